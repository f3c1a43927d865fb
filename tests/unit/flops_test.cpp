// FLOP counts (flops.h): closed forms worked out by hand for tiny specs, and a cross-check against
// the products the built models really hold (their Linear and Conv2d modules); and the matmul
// probe (matmul_probe.h).
#include "retort/flops.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "retort/error.h"
#include "retort/matmul_probe.h"
#include "retort/model.h"

using namespace retort;

namespace {

// 2 * in * out of every torch::nn::Linear in the model: its matmul FLOPs per row of input.
double linear_module_flops(const torch::nn::Module& model) {
  double flops = 0;
  for (const auto& m : model.modules(/*include_self=*/false))
    if (auto* linear = m->as<torch::nn::LinearImpl>()) flops += 2.0 * linear->weight.numel();
  return flops;
}

// 2 * (Cout * Cin * k * k) * Hout * Wout of every conv of a cnn's "features", with Hout, Wout
// found by running an example through the real layers.
double conv_module_flops(const torch::nn::Module& cnn, torch::Tensor x) {
  torch::NoGradGuard no_grad;
  auto* features = cnn.named_children()["features"]->as<torch::nn::SequentialImpl>();
  double flops = 0;
  for (auto& layer : *features) {
    x = layer.forward(x);
    if (auto* conv = layer.ptr()->as<torch::nn::Conv2dImpl>())
      flops += 2.0 * conv->weight.numel() * x.size(2) * x.size(3);
  }
  return flops;
}

}  // namespace

// ---- closed forms -------------------------------------------------------------

TEST(Flops, MlpIsTwiceEveryLinearInTimesOut) {
  // 1x28x28 -> 64 -> 32 -> 10
  EXPECT_EQ(forward_flops_per_example({"mlp", {{"hidden", {64, 32}}, {"num_classes", 10}}}),
            2.0 * (784 * 64 + 64 * 32 + 32 * 10));
  // registry defaults: 784 -> 128 -> 10
  EXPECT_EQ(forward_flops_per_example({"mlp", nlohmann::json::object()}),
            2.0 * (784 * 128 + 128 * 10));
  // no hidden layer: just the output layer, over 3x4x5 inputs
  EXPECT_EQ(forward_flops_per_example({"mlp",
                                       {{"hidden", nlohmann::json::array()},
                                        {"in_channels", 3},
                                        {"height", 4},
                                        {"width", 5},
                                        {"num_classes", 7}}}),
            2.0 * 60 * 7);
}

TEST(Flops, CnnCountsSamePaddedConvsAtEachResolutionThenTheLinears) {
  // 28x28: conv 1->8 at 28x28, pool, conv 8->16 at 14x14, pool -> 16*7*7 -> 32 -> 10
  const double convs = 2.0 * 1 * 8 * 9 * 28 * 28 + 2.0 * 8 * 16 * 9 * 14 * 14;
  const double fcs = 2.0 * (16 * 7 * 7 * 32 + 32 * 10);
  EXPECT_EQ(forward_flops_per_example(
                {"cnn", {{"channels", {8, 16}}, {"hidden", {32}}, {"num_classes", 10}}}),
            convs + fcs);
  // odd sizes pool down with floor: 15x9 -> 7x4; default hidden {256}
  EXPECT_EQ(forward_flops_per_example({"cnn", {{"channels", {4}}, {"height", 15}, {"width", 9}}}),
            2.0 * 1 * 4 * 9 * 15 * 9 + 2.0 * (4 * 7 * 4 * 256 + 256 * 10));
  EXPECT_THROW(forward_flops_per_example({"cnn", {{"channels", {8, 8, 8, 8, 8}}}}), Error);
}

TEST(Flops, GptCountsProjectionsAttentionFfnAndHead) {
  // V=64, d=32, 2 layers, 4 heads of 8, n_kv_heads 0 = 4, d_ff 0 = round_up(8*32/3, 32) = 96
  const double T = 10, d = 32, V = 64, L = 2;
  const double per_token_layer = 2 * d * (3 * d)                 // q, k, v
                                 + 2 * d * d                     // o
                                 + 3 * 2 * d * 96;               // SwiGLU w1, w3, w2
  const double attention_layer = 2 * T * T * d + 2 * T * T * d;  // scores + weighted sum
  const double expected = L * (T * per_token_layer + attention_layer) + T * 2 * d * V;
  ModelSpec spec{"gpt", {{"vocab_size", 64}, {"d_model", 32}, {"n_layers", 2}, {"n_heads", 4}}};
  EXPECT_EQ(forward_flops_per_example(spec, 10), expected);
  EXPECT_EQ(expected, 599040.0);  // the same, worked out on paper
}

TEST(Flops, GptGroupedQueryAttentionShrinksOnlyKAndV) {
  // 4 query heads of 8 share 1 kv head: k and v are d -> 8 each; d_ff 64 given
  const double T = 10, d = 32, V = 64, L = 2;
  const double per_token_layer = 2 * d * (d + 2 * 8) + 2 * d * d + 3 * 2 * d * 64;
  const double attention_layer = 4 * T * T * d;  // every query head still attends
  ModelSpec spec{"gpt",
                 {{"vocab_size", 64},
                  {"d_model", 32},
                  {"n_layers", 2},
                  {"n_heads", 4},
                  {"n_kv_heads", 1},
                  {"d_ff", 64}}};
  EXPECT_EQ(forward_flops_per_example(spec, 10),
            L * (T * per_token_layer + attention_layer) + T * 2 * d * V);
  EXPECT_EQ(forward_flops_per_example(spec, 10), 414720.0);
}

TEST(Flops, TrainStepIsThreeForwardsPerExample) {
  ModelSpec mlp{"mlp", {{"hidden", {16}}}};
  EXPECT_EQ(train_step_flops(mlp, 32), 3 * 32 * forward_flops_per_example(mlp));
  ModelSpec gpt{"gpt", {{"vocab_size", 64}, {"d_model", 32}, {"n_layers", 1}, {"n_heads", 2}}};
  EXPECT_EQ(train_step_flops(gpt, 4, 16), 3 * 4 * forward_flops_per_example(gpt, 16));
  EXPECT_EQ(train_step_flops(mlp, 0), 0.0);
  EXPECT_THROW(train_step_flops(mlp, -1), Error);
}

// ---- against the built models ---------------------------------------------------

TEST(Flops, MlpEqualsTheLinearModulesOfTheBuiltModel) {
  for (const ModelSpec& spec :
       {ModelSpec{"mlp", {{"hidden", {64, 32}}, {"num_classes", 10}}},
        ModelSpec{"mlp", {{"hidden", {5}}, {"in_channels", 3}, {"height", 8}, {"width", 8}}}}) {
    ModelPtr m = make_model(spec);
    EXPECT_EQ(forward_flops_per_example(spec), linear_module_flops(*m)) << spec.options.dump();
  }
}

TEST(Flops, CnnEqualsTheConvAndLinearModulesOfTheBuiltModel) {
  ModelSpec spec{"cnn",
                 {{"channels", {4, 6}},
                  {"hidden", {12}},
                  {"height", 15},
                  {"width", 9},
                  {"in_channels", 2},
                  {"num_classes", 3}}};
  ModelPtr m = make_model(spec);
  m->eval();
  const double real = conv_module_flops(*m, torch::randn({1, 2, 15, 9})) + linear_module_flops(*m);
  EXPECT_EQ(forward_flops_per_example(spec), real);
}

TEST(Flops, GptMinusAttentionEqualsItsLinearModulesTimesTokens) {
  const int64_t T = 12;
  for (bool tied : {false, true})
    for (int64_t kv : {0, 1, 2}) {
      ModelSpec spec{"gpt",
                     {{"vocab_size", 50},
                      {"d_model", 32},
                      {"n_layers", 3},
                      {"n_heads", 4},
                      {"n_kv_heads", kv},
                      {"max_seq_len", 16},
                      {"tie_embeddings", tied}}};
      ModelPtr m = make_model(spec);
      const double d = 32, V = 50, L = 3;
      // a tied head is F::linear with the embedding matrix: a product no Linear module holds
      const double per_token = linear_module_flops(*m) + (tied ? 2 * d * V : 0);
      const double attention = L * 4.0 * T * T * d;
      EXPECT_EQ(forward_flops_per_example(spec, T) - attention, per_token * T)
          << spec.options.dump();
    }
}

// ---- errors -------------------------------------------------------------------

TEST(Flops, UnknownModelFailsNamingIt) {
  try {
    forward_flops_per_example({"torchscript", nlohmann::json::object()});
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'torchscript'"), std::string::npos) << m;
    EXPECT_NE(m.find("cnn, gpt, mlp and tree"), std::string::npos) << m;
  }
}

TEST(Flops, GptNeedsASequenceLengthWithinItsContext) {
  ModelSpec spec{"gpt", {{"vocab_size", 64}, {"d_model", 32}, {"n_heads", 4}, {"max_seq_len", 8}}};
  EXPECT_THROW(forward_flops_per_example(spec), Error);  // seq_len defaults to 0
  EXPECT_THROW(forward_flops_per_example(spec, -3), Error);
  EXPECT_THROW(forward_flops_per_example(spec, 9), Error);
  EXPECT_GT(forward_flops_per_example(spec, 8), 0);
  // invalid options fail as make_model would: 32 is not divisible by 5 heads
  EXPECT_THROW(forward_flops_per_example({"gpt", {{"d_model", 32}, {"n_heads", 5}}}, 4), Error);
}

// ---- matmul probe -------------------------------------------------------------

// A smoke test only: timings on a shared test machine prove nothing about speed, so this checks
// that both dtypes run and give a finite positive rate.
TEST(Flops, MatmulProbeGivesAFinitePositiveRateForFp32AndBf16) {
  for (torch::ScalarType dtype : {torch::kFloat, torch::kBFloat16}) {
    const double gflops = measure_matmul_gflops(dtype, 64, 0.01);
    EXPECT_TRUE(std::isfinite(gflops)) << dtype;
    EXPECT_GT(gflops, 0) << dtype;
  }
  EXPECT_THROW(measure_matmul_gflops(torch::kInt64, 64, 0.01), Error);
}
