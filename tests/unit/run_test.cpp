// The run layer: options read once from the configuration, run folders (begin, resume, reuse,
// refusal), the kinds, and the single-run report.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "retort/config_schema.h"
#include "retort/fs.h"
#include "retort/image_run.h"
#include "retort/options.h"
#include "retort/run_kind.h"
#include "retort/run_report.h"
#include "test_util.h"

namespace retort {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::tiny_image_set;

Options options_with(const std::vector<std::string>& sets) {
  return read_options(Config::load(retort_schema(), "", sets));
}

TEST(RunOptions, SectionsCarryTheSchemaDefaultsAndTheOverrides) {
  const Config defaults = Config::defaults(retort_schema());
  const Options o = options_with({"train.epochs=3", "teacher.model.name=gpt", "distill.teacher_precision=bf16",
                                  "text.seq_len=64", "run.seed=11"});
  EXPECT_EQ(o.train.train.epochs, 3);
  EXPECT_EQ(o.train.section, "train");
  EXPECT_EQ(o.teacher.model.section, "teacher.model");
  EXPECT_EQ(o.teacher.model.name, "gpt");
  EXPECT_EQ(o.teacher.train.train.epochs, defaults.get_int("teacher.train.epochs"));
  EXPECT_EQ(o.distill.teacher_precision, Precision::Bf16);
  EXPECT_EQ(o.text.seq_len, 64);
  EXPECT_EQ(o.data.batch_size, defaults.get_int("data.batch_size"));
  EXPECT_EQ(o.model.hidden, defaults.get_ints("model.hidden"));
  // run.seed reaches both training sections (initialisation, shuffling).
  EXPECT_EQ(o.train.train.seed, 11u);
  EXPECT_EQ(o.teacher.train.train.seed, 11u);
  EXPECT_FALSE(o.run.cache_dir.empty());  // resolved to the default cache folder
  EXPECT_NE(o.toml().find("seq_len = 64"), std::string::npos);
}

TEST(RunOptions, WithSeedChangesTheSeedAndItsDigestButNothingElse) {
  const Options o = options_with({"run.seed=1"});
  const Options p = o.with_seed(2);
  EXPECT_EQ(p.run.seed, 2);
  EXPECT_EQ(p.train.train.seed, 2u);
  EXPECT_NE(p.digest("run.seed"), o.digest("run.seed"));
  EXPECT_EQ(p.digest("model."), o.digest("model."));
  EXPECT_EQ(p.digest("distill."), o.digest("distill."));
}

TEST(RunOptions, OptionsNotReadFromAConfigurationHaveNoDigest) {
  EXPECT_NE(error_of([] { Options{}.digest("model."); }).find("read_options"), std::string::npos);
}

TEST(RunKinds, DataKindPicksTheKindAndAnUnknownOneIsNamed) {
  EXPECT_STREQ(run_kind("images").data_kind(), "images");
  EXPECT_STREQ(run_kind("text").data_kind(), "text");
  EXPECT_TRUE(run_kind("images").metric().higher_is_better);
  EXPECT_FALSE(run_kind("text").metric().higher_is_better);
  std::string e = error_of([] { run_kind("audio"); });
  EXPECT_NE(e.find("'audio'"), std::string::npos) << e;
  EXPECT_NE(e.find("images"), std::string::npos) << e;
}

// A labels run on a tiny synthetic set in `dir`.
RunSpec tiny_spec(const Options& o, const ImageSet& data, const std::filesystem::path& dir) {
  RunSpec spec = labels_run_spec(o, o.model, o.train, data, dir);
  spec.log_every = 1;
  return spec;
}

TEST(RunFolder, AFinishedRunIsReusedAndAnotherConfigurationIsRefused) {
  TempDir tmp;
  const Options o = options_with({"model.hidden=16", "train.epochs=2", "data.batch_size=16", "train.warmup_steps=0"});
  ImageSet train = tiny_image_set(64), test = tiny_image_set(32, 9);
  RunResult first = execute_run(tiny_spec(o, train, tmp / "r"), train, test);
  EXPECT_FALSE(first.reused);
  auto meta = nlohmann::json::parse(read_text(tmp / "r" / "run.json"));
  EXPECT_EQ(meta["status"], "finished");
  EXPECT_EQ(meta["steps"], 8);  // 2 epochs of 64 / 16 batches
  EXPECT_DOUBLE_EQ(meta["test_accuracy"].get<double>(), first.test_accuracy);

  RunResult again = execute_run(tiny_spec(o, train, tmp / "r"), train, test);
  EXPECT_TRUE(again.reused);
  EXPECT_DOUBLE_EQ(again.test_accuracy, first.test_accuracy);

  const Options other = options_with({"model.hidden=8", "train.epochs=2", "data.batch_size=16"});
  std::string e = error_of([&] { execute_run(tiny_spec(other, train, tmp / "r"), train, test); });
  EXPECT_NE(e.find("different configuration"), std::string::npos) << e;
  RunSpec restart = tiny_spec(other, train, tmp / "r");
  restart.on_mismatch = OnMismatch::Restart;
  RunResult redone = execute_run(restart, train, test);
  EXPECT_FALSE(redone.reused);
  EXPECT_EQ(redone.params, 64 * 8 + 8 + 8 * 4 + 4);
}

// A finished run.json and metrics.jsonl written by hand: the report reads only the folder.
void write_run(const std::filesystem::path& dir, const nlohmann::json& run) {
  std::filesystem::create_directories(dir);
  atomic_write_text(dir / "run.json", run.dump());
  std::ofstream m(dir / "metrics.jsonl");
  m << R"({"type":"step","step":5,"loss":2.0})" << "\n" << R"({"type":"step","step":10,"loss":1.0})" << "\n";
  m << R"({"type":"epoch","epoch":1,"step":10,"test_accuracy":0.5,"agreement":0.6})" << "\n";
  m << R"({"type":"epoch","epoch":2,"step":20,"test_accuracy":0.8,"agreement":0.9})" << "\n";
}

TEST(RunReport, DistillationSaysFirstWhatWasKeptOfTheTeacher) {
  TempDir tmp;
  write_run(tmp / "s", {{"status", "finished"}, {"model", "mlp"}, {"params", 1000}, {"epochs", 2},
                        {"test_accuracy", 0.8}, {"agreement", 0.9}, {"teacher", "runs/t"}, {"digest", "x"}});
  RunReportFiles f = write_run_report(tmp / "s", {"distill", run_kind("images").metric(), 0.9, 4000});
  EXPECT_NE(f.headline.find("kept 88.9% of its teacher's test accuracy (80.00% vs 90.00%)"), std::string::npos)
      << f.headline;
  EXPECT_NE(f.headline.find("4.0x fewer parameters"), std::string::npos) << f.headline;
  auto report = nlohmann::json::parse(read_text(f.json));
  EXPECT_DOUBLE_EQ(report["metric"]["value"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(report["teacher"]["value"].get<double>(), 0.9);
  EXPECT_FALSE(report["run"].contains("digest"));
  std::string html = read_text(f.html);
  EXPECT_EQ(html.find(f.headline.substr(0, 40)) < html.find("<svg"), true);  // the headline comes first
  size_t plots = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++plots;
  EXPECT_EQ(plots, 3u);  // accuracy by epoch, loss by step, agreement by epoch
}

TEST(RunReport, LowerIsBetterMetricsSayTheGapAndAnUnscoredTeacherIsSaid) {
  TempDir tmp;
  write_run(tmp / "s", {{"status", "finished"}, {"model", "gpt"}, {"params", 500}, {"epochs", 1},
                        {"val_bpb", 2.5}, {"curve", {{10, 3.0}, {20, 2.5}}}});
  RunReportFiles f = write_run_report(tmp / "s", {"distill", run_kind("text").metric(), 2.25, 500});
  EXPECT_NE(f.headline.find("2.5000 bits/byte"), std::string::npos) << f.headline;
  EXPECT_NE(f.headline.find("0.2500 above its teacher's 2.2500 bits/byte"), std::string::npos) << f.headline;
  RunReportFiles api = write_run_report(tmp / "s", {"distill", run_kind("text").metric()});  // NaN: unknown
  EXPECT_NE(api.headline.find("not measured"), std::string::npos) << api.headline;
}

TEST(RunReport, AFolderWithoutAFinishedRunIsRefused) {
  TempDir tmp;
  EXPECT_NE(error_of([&] { write_run_report(tmp.path(), {"train", run_kind("images").metric()}); }).find("no run.json"),
            std::string::npos);
  write_run(tmp / "s", {{"status", "training"}});
  EXPECT_NE(error_of([&] { write_run_report(tmp / "s", {"train", run_kind("images").metric()}); }).find("no finished run"),
            std::string::npos);
}

}  // namespace
}  // namespace retort
