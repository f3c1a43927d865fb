// Config: defaults, TOML file, --set overrides and every kind of bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "retort/config.h"
#include "retort/config_schema.h"
#include "retort/demo.h"
#include "retort/error.h"
#include "test_util.h"

using namespace retort;
using retort::testing::TempDir;
using retort::testing::error_of;

namespace {
void write(const std::filesystem::path& p, const std::string& s) { std::ofstream(p) << s; }
}  // namespace

TEST(Config, FileThenSetOverridesInOrder) {
  TempDir tmp;
  write(tmp / "c.toml", "[train]\nepochs = 7\nlr = 1\n[model]\nhidden = [32, 16]\n[teacher.model]\nname = \"mlp\"\n");
  Config c = Config::load(retort_schema(), (tmp / "c.toml").string(), {"train.epochs=9", "train.hflip=true"});
  EXPECT_EQ(c.get_int("train.epochs"), 9);
  EXPECT_DOUBLE_EQ(c.get_float("train.lr"), 1.0);  // an integer is accepted for a number
  EXPECT_EQ(c.get_ints("model.hidden"), (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(c.get_string("teacher.model.name"), "mlp");
  EXPECT_TRUE(c.get_bool("train.hflip"));
  EXPECT_EQ(c.get_int("data.batch_size"), 128);  // default kept
}

TEST(Config, ResolvedTomlLoadsBackToTheSameValues) {
  TempDir tmp;
  Config a = Config::load(retort_schema(), "", {"model.hidden=300,20", "distill.temperature=2.5", "run.name=x"});
  write(tmp / "r.toml", a.to_toml());
  Config b = Config::load(retort_schema(), (tmp / "r.toml").string(), {});
  EXPECT_EQ(a.digest(), b.digest());
  EXPECT_EQ(b.get_ints("model.hidden"), (std::vector<int64_t>{300, 20}));
}

TEST(Config, UnknownKeySuggestsTheNearestOne) {
  std::string m = error_of([] { Config::load(retort_schema(), "", {"trian.epochs=3"}); });
  EXPECT_NE(m.find("unknown config key 'trian.epochs'"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'train.epochs'"), std::string::npos) << m;
  TempDir tmp;
  write(tmp / "c.toml", "[distill]\ntemprature = 2\n");
  m = error_of([&] { Config::load(retort_schema(), (tmp / "c.toml").string(), {}); });
  EXPECT_NE(m.find("distill.temperature"), std::string::npos) << m;
}

TEST(Config, WrongTypesAndRangesAreRefusedWithTheValue) {
  EXPECT_NE(error_of([] { Config::load(retort_schema(), "", {"train.epochs=abc"}); }).find("must be an integer, got 'abc'"),
            std::string::npos);
  EXPECT_NE(error_of([] { Config::load(retort_schema(), "", {"distill.temperature=-1"}); }).find("-1"), std::string::npos);
  EXPECT_NE(error_of([] { Config::load(retort_schema(), "", {"data.batch_size=0"}); }).find("data.batch_size"),
            std::string::npos);
  EXPECT_NE(error_of([] { Config::load(retort_schema(), "", {"train.epochs=3.5"}); }).find("integer"), std::string::npos);
  EXPECT_NE(error_of([] { Config::load(retort_schema(), "", {"model.hidden=12,x"}); }).find("list of integers"),
            std::string::npos);
  EXPECT_NE(error_of([] { Config::load(retort_schema(), "", {"train.optimizer=lion"}); }).find("one of"),
            std::string::npos);
  EXPECT_NE(error_of([] { Config::load(retort_schema(), "", {"noequals"}); }).find("key=value"), std::string::npos);
  TempDir tmp;
  write(tmp / "c.toml", "[train]\nepochs = \"ten\"\n");
  EXPECT_NE(error_of([&] { Config::load(retort_schema(), (tmp / "c.toml").string(), {}); }).find("must be an integer"),
            std::string::npos);
}

TEST(Config, MalformedTomlReportsLineAndColumn) {
  TempDir tmp;
  write(tmp / "bad.toml", "[train]\nepochs = 3\nlr = = 2\n");
  std::string m = error_of([&] { Config::load(retort_schema(), (tmp / "bad.toml").string(), {}); });
  EXPECT_NE(m.find("line 3"), std::string::npos) << m;
  m = error_of([&] { Config::load(retort_schema(), (tmp / "none.toml").string(), {}); });
  EXPECT_NE(m.find("cannot be opened"), std::string::npos) << m;
}

TEST(Config, LmRecipeFileMatchesTheBuiltInRecipe) {
  // `retort demo lm` starts from lm_recipe_toml(); configs/kjv-lm.toml must say the same.
  using retort::Config;
  Config built_in = Config::load(retort::retort_schema(), "", {}, retort::lm_recipe_toml());
  Config file = Config::load(retort::retort_schema(), RETORT_SOURCE_DIR "/configs/kjv-lm.toml", {});
  EXPECT_EQ(built_in.to_toml(), file.to_toml());
  EXPECT_EQ(built_in.get_string("data.kind"), "text");
  EXPECT_EQ(built_in.get_string("model.name"), "gpt");
}

