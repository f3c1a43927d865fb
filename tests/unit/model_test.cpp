// Models: registry, shapes, parameter counts, save/load round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "retort/error.h"
#include "retort/load_model.h"
#include "retort/model.h"
#include "test_util.h"

using namespace retort;
using retort::testing::TempDir;

TEST(Registry, UnknownNameListsTheKnownModels) {
  try {
    make_model({"resnet", {}});
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("unknown model 'resnet'"), std::string::npos) << m;
    EXPECT_NE(m.find("cnn, gpt, mlp"), std::string::npos) << m;
  }
}

TEST(Mlp, ParameterCountMatchesClosedForm) {
  ModelPtr m = make_model({"mlp", {{"hidden", {64, 32}}, {"num_classes", 10}}});
  EXPECT_EQ(count_parameters(*m), (784 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10));
  EXPECT_EQ(m->forward(torch::randn({3, 1, 28, 28})).logits.sizes(), (std::vector<int64_t>{3, 10}));
}

TEST(Cnn, ShapesAndParameterCount) {
  ModelPtr m = make_model({"cnn", {{"channels", {8, 16}}, {"hidden", {32}}, {"num_classes", 10}}});
  int64_t convs = (1 * 9 * 8 + 8) + 2 * 8 + (8 * 9 * 16 + 16) + 2 * 16;  // conv + batch-norm affine
  int64_t fcs = (16 * 7 * 7 * 32 + 32) + (32 * 10 + 10);
  EXPECT_EQ(count_parameters(*m), convs + fcs);
  EXPECT_EQ(m->forward(torch::randn({2, 1, 28, 28})).logits.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_THROW(make_model({"cnn", {{"channels", {8, 8, 8, 8, 8}}}}), Error);
  EXPECT_THROW(make_model({"mlp", {{"hidden", {0}}}}), Error);
}

TEST(ModelFolder, SaveLoadRoundTripGivesIdenticalOutputs) {
  TempDir tmp;
  ModelSpec spec{"cnn", {{"channels", {4}}, {"hidden", {8}}, {"num_classes", 3}, {"dropout", 0.1}}};
  ModelPtr m = make_model(spec);
  m->eval();
  int64_t bytes = save_model(*m, spec, tmp / "model");
  EXPECT_GT(bytes, count_parameters(*m) * 4);
  LoadedModel back = load_model(tmp.path());  // a run folder holding model/
  back.model->eval();
  torch::Tensor x = torch::randn({5, 1, 28, 28});
  EXPECT_TRUE(m->forward(x).logits.equal(back.model->forward(x).logits));
  EXPECT_EQ(back.spec.name, "cnn");
}

TEST(ModelFolder, MissingOrCorruptFilesGiveClearErrors) {
  TempDir tmp;
  EXPECT_THROW(load_model(tmp / "nothing"), Error);
  ModelSpec spec{"mlp", {{"hidden", {4}}}};
  save_model(*make_model(spec), spec, tmp / "m");
  { std::ofstream(tmp / "m" / "model.pt", std::ios::trunc) << "garbage"; }
  EXPECT_THROW(load_model(tmp / "m"), Error);
  { std::ofstream(tmp / "m" / "model.json", std::ios::trunc) << "{not json"; }
  EXPECT_THROW(load_model(tmp / "m"), Error);
}
