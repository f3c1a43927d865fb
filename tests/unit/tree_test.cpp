// The soft decision tree student (src/models/tree.h): shapes, the leaf mixture, a depth-2 tree
// against a hand computation, gradients (the split regularizer's included) against finite
// differences, learning a tiny set, bad options; and the PNG pictures its report draws.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cmath>

#include "eval/png.h"
#include "models/tree.h"
#include "retort/flops.h"
#include "retort/model.h"
#include "retort/tree_report.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;

namespace {

std::shared_ptr<TreeImpl> tree(int64_t depth, int64_t features = 64, int64_t classes = 4, double beta = 1.0,
                               double split_penalty = 0.0) {
  torch::manual_seed(3);
  return std::make_shared<TreeImpl>(
      TreeOptions().in_features(features).depth(depth).num_classes(classes).beta(beta).split_penalty(split_penalty));
}

double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

}  // namespace

TEST(Tree, ShapesAndEveryMixtureSumsToOne) {
  auto t = tree(3);
  torch::Tensor x = torch::randn({5, 1, 8, 8});
  ModelOutput out = t->forward(x);
  EXPECT_EQ(out.logits.sizes().vec(), (std::vector<int64_t>{5, 4}));
  ASSERT_EQ(out.hidden.size(), 1u);
  EXPECT_EQ(out.hidden[0].sizes().vec(), (std::vector<int64_t>{5, 8}));  // 2^3 leaves
  EXPECT_EQ(t->inner->weight.sizes().vec(), (std::vector<int64_t>{7, 64}));
  // Path probabilities, leaf distributions and the mixture are each a distribution.
  EXPECT_TRUE(torch::allclose(out.hidden[0].sum(1), torch::ones({5}), 1e-6, 1e-6)) << out.hidden[0].sum(1);
  EXPECT_TRUE(torch::allclose(t->leaf_distributions().sum(1), torch::ones({8}), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(out.logits.exp().sum(1), torch::ones({5}), 1e-6, 1e-6)) << out.logits.exp().sum(1);
  // So log_softmax (what every objective applies) leaves the logits as they are.
  EXPECT_TRUE(torch::allclose(torch::log_softmax(out.logits, 1), out.logits, 1e-6, 1e-6));
  EXPECT_EQ(count_parameters(*t), 7 * 64 + 7 + 8 * 4);
}

TEST(Tree, Depth2ForwardEqualsAHandComputation) {
  auto t = tree(/*depth=*/2, /*features=*/3, /*classes=*/3, /*beta=*/2.0);
  const double w[3][3] = {{0.5, -1.0, 0.25}, {1.5, 0.0, -0.5}, {-0.75, 2.0, 1.0}}, b[3] = {0.1, -0.2, 0.3};
  const double phi[4][3] = {{1, 0, -1}, {0, 2, 0}, {-1, 0.5, 1}, {0.3, 0.3, 3}};
  {
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) t->inner->weight[i][j] = w[i][j];
      t->inner->bias[i] = b[i];
    }
    for (int l = 0; l < 4; ++l)
      for (int c = 0; c < 3; ++c) t->leaf_logits[l][c] = phi[l][c];
  }
  const double x[3] = {0.4, -0.3, 1.2};
  double p[3];  // node 0 is the root, 1 its left child, 2 its right child
  for (int i = 0; i < 3; ++i) p[i] = sigmoid(2.0 * (w[i][0] * x[0] + w[i][1] * x[1] + w[i][2] * x[2] + b[i]));
  // Leaves left to right: left-left, left-right, right-left, right-right.
  const double mu[4] = {(1 - p[0]) * (1 - p[1]), (1 - p[0]) * p[1], p[0] * (1 - p[2]), p[0] * p[2]};
  torch::Tensor logits = t->forward(torch::tensor({x[0], x[1], x[2]}, torch::kFloat32).view({1, 3})).logits;
  TreeRouting r = t->route(torch::tensor({x[0], x[1], x[2]}, torch::kFloat32).view({1, 3}));
  for (int l = 0; l < 4; ++l) EXPECT_NEAR(r.leaf[0][l].item<double>(), mu[l], 1e-6) << "leaf " << l;
  for (int c = 0; c < 3; ++c) {
    double mixture = 0;
    for (int l = 0; l < 4; ++l) {
      double z = 0;
      for (int k = 0; k < 3; ++k) z += std::exp(phi[l][k]);
      mixture += mu[l] * std::exp(phi[l][c]) / z;
    }
    EXPECT_NEAR(logits[0][c].item<double>(), std::log(mixture), 1e-6) << "class " << c;
  }
  // The paper's test-time rule: the most probable leaf's own distribution.
  int best = 0;
  for (int l = 1; l < 4; ++l)
    if (mu[l] > mu[best]) best = l;
  torch::Tensor max_path = t->max_path_logits(torch::tensor({x[0], x[1], x[2]}, torch::kFloat32).view({1, 3}));
  EXPECT_TRUE(torch::allclose(max_path[0], torch::log_softmax(t->leaf_logits[best], 0), 1e-6, 1e-6))
      << "leaf " << best << ": " << max_path;
}

// Cross-entropy on the tree's logits, in float64; the split regularizer's gradient, when on,
// must be that of (cross-entropy + split_penalty(routing)).
void check_tree_gradients(double split_penalty) {
  auto t = tree(/*depth=*/3, /*features=*/6, /*classes=*/3, /*beta=*/1.5, split_penalty);
  t->to(torch::kFloat64);
  t->train();
  torch::manual_seed(11);
  torch::Tensor x = torch::randn({7, 6}, torch::kFloat64), y = torch::randint(0, 3, {7}, torch::kInt64);
  auto loss_with_penalty = [&] {
    torch::NoGradGuard no_grad;
    torch::Tensor ce = torch::nll_loss(torch::log_softmax(t->forward(x).logits, 1), y);
    return (ce + t->split_penalty(t->route(x))).item<double>();  // lambda 0: the penalty is 0
  };
  torch::nll_loss(torch::log_softmax(t->forward(x).logits, 1), y).backward();
  const double h = 1e-6;
  for (auto& p : t->named_parameters()) {
    torch::Tensor analytic = p.value().grad().clone();
    for (int64_t i = 0; i < p.value().numel(); i += 5) {  // every fifth entry of each parameter
      torch::NoGradGuard no_grad;
      const double keep = p.value().view(-1)[i].item<double>();
      p.value().view(-1)[i] = keep + h;
      const double plus = loss_with_penalty();
      p.value().view(-1)[i] = keep - h;
      const double minus = loss_with_penalty();
      p.value().view(-1)[i] = keep;
      EXPECT_NEAR(analytic.view(-1)[i].item<double>(), (plus - minus) / (2 * h), 1e-7)
          << p.key() << " entry " << i << ", split_penalty " << split_penalty;
    }
  }
}

TEST(Tree, GradientsMatchFiniteDifferences) { check_tree_gradients(0.0); }
TEST(Tree, SplitPenaltyGradientMatchesFiniteDifferencesOfLossPlusPenalty) { check_tree_gradients(0.5); }

TEST(Tree, SplitPenaltyIsLeastForEvenSplitsAndGrowsForStuckNodes) {
  auto t = tree(/*depth=*/2, /*features=*/4, /*classes=*/2, /*beta=*/1.0, /*split_penalty=*/1.0);
  TreeRouting even{torch::full({4, 3}, 0.5), torch::full({4, 4}, 0.25)};
  // Every node sends half its mass right: -(log 0.5 + log 0.5) / 2 = log 2 per node, weighted
  // 1 at the root and 1/2 for each of the two nodes below: log 2 * (1 + 2 / 2).
  EXPECT_NEAR(t->split_penalty(even).item<double>(), 2 * std::log(2.0), 1e-6);
  TreeRouting stuck{torch::full({4, 3}, 0.99), torch::tensor({0.0001, 0.0099, 0.0099, 0.9801}).repeat({4, 1})};
  EXPECT_GT(t->split_penalty(stuck).item<double>(), 3 * std::log(2.0));
}

TEST(Tree, Depth3LearnsATinySetAboveChance) {
  ImageSet train = retort::testing::tiny_image_set(240, 7), held_out = retort::testing::tiny_image_set(200, 8);
  auto t = tree(/*depth=*/3);
  torch::optim::Adam opt(t->parameters(), torch::optim::AdamOptions(0.05));
  for (int step = 0; step < 150; ++step) {
    opt.zero_grad();
    torch::nll_loss(torch::log_softmax(t->forward(train.images).logits, 1), train.labels).backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  t->eval();
  const double acc = t->forward(held_out.images).logits.argmax(1).eq(held_out.labels).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(acc, 0.6) << "4 classes: chance is 0.25";
  const double max_path =
      t->max_path_logits(held_out.images).argmax(1).eq(held_out.labels).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(max_path, 0.5);
}

TEST(Tree, RegistryBuildsItAndBadOptionsNameTheValue) {
  ModelSpec spec{"tree", {{"in_channels", 1}, {"height", 8}, {"width", 8}, {"num_classes", 4}, {"depth", 4}}};
  ModelPtr m = make_model(spec);
  EXPECT_EQ(m->forward(torch::randn({2, 1, 8, 8})).logits.sizes().vec(), (std::vector<int64_t>{2, 4}));
  // FLOPs: 15 filters over 64 pixels, 4 levels of products over 16 leaves, 16 x 4 mixture.
  EXPECT_DOUBLE_EQ(forward_flops_per_example(spec, 0), 2.0 * 64 * 15 + 3.0 * 4 * 16 + 2.0 * 16 * 4);
  for (int64_t depth : {0, 13}) {
    spec.options["depth"] = depth;
    EXPECT_EQ(error_of([&] { make_model(spec); }), cat("tree: depth must be 1 to 12 (2 to 4096 leaves), got ", depth));
    EXPECT_EQ(error_of([&] { forward_flops_per_example(spec, 0); }),
              cat("tree: depth must be 1 to 12 (2 to 4096 leaves), got ", depth));
  }
  spec.options["depth"] = 2;
  spec.options["beta"] = 0.0;
  EXPECT_EQ(error_of([&] { make_model(spec); }), "tree: beta (the inverse temperature) must be > 0, got 0");
}

TEST(Tree, LevelsSayWhichAncestorAndBranchLeadToEachLeaf) {
  std::vector<TreeLevel> levels = tree_levels(2);
  ASSERT_EQ(levels.size(), 2u);
  EXPECT_TRUE(levels[0].node.equal(torch::tensor({0, 0, 0, 0}, torch::kInt64)));
  EXPECT_TRUE(levels[0].sign.equal(torch::tensor({-1.0f, -1.0f, 1.0f, 1.0f})));
  EXPECT_TRUE(levels[1].node.equal(torch::tensor({1, 1, 2, 2}, torch::kInt64)));
  EXPECT_TRUE(levels[1].offset.equal(torch::tensor({1.0f, 0.0f, 1.0f, 0.0f})));
}

TEST(TreeReport, PngHasSignatureChunksAndTheRows) {
  std::vector<uint8_t> rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9};  // 2x2
  std::string png = png_rgb(2, 2, rgb);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
  // The IDAT payload inflates to two rows, each a filter byte 0 and its pixels.
  const size_t idat = png.find("IDAT");
  const uint32_t len = (uint8_t(png[idat - 4]) << 24) | (uint8_t(png[idat - 3]) << 16) | (uint8_t(png[idat - 2]) << 8) |
                       uint8_t(png[idat - 1]);
  std::string raw(14, '\0');
  uLongf n = raw.size();
  ASSERT_EQ(uncompress(reinterpret_cast<Bytef*>(raw.data()), &n, reinterpret_cast<const Bytef*>(png.data() + idat + 4), len), Z_OK);
  EXPECT_EQ(n, 14u);
  EXPECT_EQ(raw, std::string("\0\xff\0\0\0\xff\0\0\0\0\xff\x09\x09\x09", 14));
  EXPECT_EQ(png_data_uri(2, 2, rgb).rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u);
  EXPECT_NE(error_of([&] { png_rgb(3, 2, rgb); }), "(no error)");
}

TEST(TreeReport, NamesFashionMnistClassesAndSkipsOtherModels) {
  EXPECT_EQ(class_name(0, true), "T-shirt/top");
  EXPECT_EQ(class_name(9, true), "Ankle boot");
  EXPECT_EQ(class_name(9, false), "class 9");
  retort::testing::TempDir tmp;
  EXPECT_TRUE(tree_report_section(tmp.path()).html.empty());  // no model at all
}
