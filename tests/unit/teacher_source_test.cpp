// The teacher sources' registry: each source recognised from its example, unknown prefixes
// refused with the list of known ones, and what an opened teacher says it gives.
#include "retort/teacher_source.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "retort/formats.h"
#include "retort/model.h"
#include "test_util.h"

namespace retort {
namespace {

using testing::error_of;
using testing::TempDir;

TEST(TeacherSource, EachRegisteredSourceIsRecognisedFromItsExample) {
  ASSERT_GE(teacher_sources().size(), 4u);
  for (const TeacherSource& s : teacher_sources()) {
    EXPECT_STREQ(teacher_source_of(s.example).name, s.name) << s.example;
    EXPECT_NE(std::string(s.help), "") << s.name;
    EXPECT_EQ(std::string(s.example).rfind(s.prefix, 0), 0u) << s.name << " example " << s.example;
  }
  EXPECT_EQ(teacher_source_location("torchscript:dir/t.pt"), "dir/t.pt");
  EXPECT_EQ(teacher_source_location("runs/demo/teacher"), "runs/demo/teacher");
  EXPECT_STREQ(teacher_source_of("runs/a:b").name, "folder");  // a ':' after a '/' is a path
}

TEST(TeacherSource, UnknownPrefixListsTheKnownSources) {
  std::string e = error_of([] { open_teacher("hf:gpt2"); });
  EXPECT_NE(e.find("unknown teacher source 'hf:gpt2'"), std::string::npos) << e;
  for (const TeacherSource& s : teacher_sources()) {
    EXPECT_NE(e.find(s.name), std::string::npos) << s.name << " missing from: " << e;
    EXPECT_NE(e.find(s.example), std::string::npos) << s.example << " missing from: " << e;
  }
}

TEST(TeacherSource, FolderOfASavedLanguageModelGivesDenseAndTopK) {
  TempDir tmp;
  LoadedModel lm = testing::tiny_gpt({{"vocab_size", 256}});
  save_model(*lm.model, lm.spec, tmp / "lm");
  lm.tokenizer->save(tmp / "lm");
  OpenedTeacher t = open_teacher((tmp / "lm").string());
  EXPECT_EQ(t.kind, "folder");
  EXPECT_TRUE(t.signals.dense);
  EXPECT_TRUE(t.signals.top_k);
  EXPECT_TRUE(t.for_text);
  EXPECT_FALSE(t.for_images);
  ASSERT_TRUE(t.model.has_value());
  EXPECT_EQ(t.model->spec.name, "gpt");
  EXPECT_FALSE(t.api.has_value());
  t.check_data_kind("text");
  std::string e = error_of([&] { t.check_data_kind("image"); });
  EXPECT_NE(e.find("data.kind = text"), std::string::npos) << e;
  // the same model exported as safetensors: a model_file source
  export_safetensors(lm, tmp / "st", {});
  OpenedTeacher st = open_teacher((tmp / "st").string());
  EXPECT_EQ(st.kind, "model_file");
  EXPECT_TRUE(st.signals.dense && st.for_text);
}

TEST(TeacherSource, FolderOfASavedClassifierGivesDenseLogitsForImages) {
  TempDir tmp;
  ModelSpec spec{"mlp", {{"hidden", {8}}, {"num_classes", 10}}};
  save_model(*make_model(spec), spec, tmp / "m");
  OpenedTeacher t = open_teacher((tmp / "m").string());
  EXPECT_TRUE(t.signals.dense);
  EXPECT_FALSE(t.signals.text);
  EXPECT_TRUE(t.for_images);
  EXPECT_FALSE(t.for_text);
  std::string e = error_of([&] { t.check_data_kind("text"); });
  EXPECT_NE(e.find("not a language model"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { open_teacher((tmp / "nowhere").string()); }).find("no model at"),
            std::string::npos);
}

TEST(TeacherSource, OpenAiSourceGivesTopKTextOrProbabilitiesWithoutConnecting) {
  ::setenv("RETORT_TEST_SOURCE_KEY", "sk-1", 1);
  TeacherSourceOptions o;
  o.api.model = "kjv";
  o.api_key_env = "RETORT_TEST_SOURCE_KEY";
  // port 1: nothing listens there, so opening must not connect
  OpenedTeacher t = open_teacher("openai:http://127.0.0.1:1/v1/", o);
  ::unsetenv("RETORT_TEST_SOURCE_KEY");
  EXPECT_EQ(t.kind, "openai");
  // A language model's top-k and text, or a classifier's probabilities: which one, GET models
  // says when the harvest begins (api_classify_test.cpp, api_harvest_test.cpp).
  EXPECT_TRUE(t.signals.top_k);
  EXPECT_TRUE(t.signals.text);
  EXPECT_TRUE(t.signals.dense);
  EXPECT_TRUE(t.for_text);
  EXPECT_TRUE(t.for_images);
  EXPECT_FALSE(t.model.has_value());
  ASSERT_TRUE(t.api.has_value());
  EXPECT_EQ(t.api->base_url, "http://127.0.0.1:1/v1");
  EXPECT_EQ(t.api->model, "kjv");
  EXPECT_EQ(t.api->api_key, "sk-1");
  std::string e = error_of([&] { t.local_model("distill.init_from_teacher"); });
  EXPECT_NE(e.find("teacher's weights"), std::string::npos) << e;
  t.check_data_kind("text");
  t.check_data_kind("images");
}

}  // namespace
}  // namespace retort
