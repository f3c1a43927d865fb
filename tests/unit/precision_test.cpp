// bf16 autocast scopes: products in bfloat16 inside, fp32 again outside, nesting restored.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "retort/precision.h"
#include "test_util.h"

namespace retort {
namespace {
using namespace retort::testing;

TEST(Precision, AutocastScopeRunsProductsInBf16AndRestores) {
  torch::nn::Linear layer(8, 4);
  torch::Tensor x = torch::randn({2, 8});
  {
    AutocastScope outer(Precision::Bf16, torch::kCPU);
    EXPECT_EQ(layer(x).scalar_type(), torch::kBFloat16);
    {
      AutocastScope inner(Precision::Fp32, torch::kCPU);  // fp32 inside bf16 changes nothing
      EXPECT_EQ(layer(x).scalar_type(), torch::kBFloat16);
    }
    // bf16 rounding: close to the fp32 product, but not equal.
    torch::Tensor y16 = layer(x).to(torch::kFloat);
    EXPECT_LT((y16 - torch::addmm(layer->bias, x, layer->weight.t())).abs().max().item<double>(), 0.05);
  }
  EXPECT_EQ(layer(x).scalar_type(), torch::kFloat);
  {
    AutocastScope off(Precision::Fp32, torch::kCPU);
    EXPECT_EQ(layer(x).scalar_type(), torch::kFloat);
  }
}

TEST(Precision, Names) {
  EXPECT_EQ(parse_precision("bf16", "k"), Precision::Bf16);
  EXPECT_EQ(parse_precision("fp32", "k"), Precision::Fp32);
  EXPECT_STREQ(precision_name(Precision::Bf16), "bf16");
  EXPECT_NE(error_of([] { parse_precision("fp16", "train.precision"); }).find("train.precision must be fp32 or bf16"),
            std::string::npos);
}

}  // namespace
}  // namespace retort
