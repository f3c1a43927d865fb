// tree: a soft decision tree student (Frosst & Hinton 2017, "Distilling a neural network into a
// soft decision tree") for image classifiers. Not a hard tree: every example takes every path,
// weighted by the product of its inner nodes' logistic decisions.
//
// A complete binary tree of depth d has 2^d - 1 inner nodes (heap order: node i has children
// 2i+1 (left) and 2i+2 (right)) and 2^d leaves (left to right). Inner node i is a logistic
// filter over the flattened image, p_i(x) = sigmoid(beta * (w_i . x + b_i)), the probability of
// taking its right branch. Leaf l holds a class distribution Q_l = softmax(phi_l). An example's
// path probability to leaf l, mu_l(x), is the product of the decisions on the way there.
//
// forward() returns logits = log(sum_l mu_l(x) Q_l), the log of the path-weighted mixture of
// leaf distributions: log-probabilities, so log_softmax leaves them unchanged and the existing
// cross-entropy and KD terms train the tree as they train any classifier. The same mixture is
// what evaluation, `retort eval` and the ONNX export compute. The paper's test-time rule, the
// leaf of the single most probable path, is max_path_logits(); the run report measures both.
#pragma once
#include <torch/nn.h>

#include <vector>

#include "retort/model.h"

namespace retort {

struct TreeOptions {
  TORCH_ARG(int64_t, in_features) = 784;  // flattened image size (C * H * W)
  TORCH_ARG(int64_t, depth) = 6;          // levels of inner nodes, 1 .. 12: 2^depth leaves
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(double, beta) = 1.0;          // inverse temperature of every inner node's sigmoid (> 0)
  // lambda of the paper's split regularizer at the root (0 = off): a node at depth k adds
  // -lambda 2^-k (log a_i + log(1 - a_i)) / 2 to the loss, a_i being the share of the batch's
  // path probability reaching node i that it sends right. See TreeImpl::split_penalty. Without
  // it nodes saturate early and leaves go unused: depth 6 on Fashion-MNIST reached 74.7% at 0,
  // 86.3% at 0.1 and 85.9% at 1 (8 epochs, adam 0.01; BENCHMARKS.md).
  TORCH_ARG(double, split_penalty) = 0.1;
};

// Which leaf each level's decision leads to: at level k, leaf l's ancestor is inner node
// node[l], and its factor is p_node * sign[l] + offset[l] (p for a right turn, 1 - p for a left
// one). forward() and the ONNX export both multiply these factors level by level.
struct TreeLevel {
  torch::Tensor node;    // (2^depth) int64, the ancestor at this level of each leaf
  torch::Tensor sign;    // (2^depth) float32, +1 right, -1 left
  torch::Tensor offset;  // (2^depth) float32, 0 right, 1 left
};
std::vector<TreeLevel> tree_levels(int64_t depth);  // depth entries, root level first

// What one batch does in the tree.
struct TreeRouting {
  torch::Tensor right;  // (B, 2^depth - 1) p_i(x): probability of turning right at node i
  torch::Tensor leaf;   // (B, 2^depth) mu_l(x): path probability of each leaf; rows sum to 1
};

class TreeImpl : public ModelImpl {
 public:
  explicit TreeImpl(const TreeOptions& o);
  // x: (B, ...) flattened to (B, in_features) -> logits (B, num_classes) = log of the leaf
  // mixture; hidden = {leaf path probabilities (B, 2^depth)}. In training with split_penalty > 0
  // the logits also carry the split regularizer's gradient (see split_penalty()).
  ModelOutput forward(const torch::Tensor& x) override;
  TreeRouting route(const torch::Tensor& x);
  // The leaf distributions Q: (2^depth, num_classes), rows sum to 1.
  torch::Tensor leaf_distributions() const;
  // The paper's test-time rule: log Q of each example's most probable leaf, (B, num_classes).
  torch::Tensor max_path_logits(const torch::Tensor& x);
  // The paper's regularizer over one batch's routing (a scalar, lambda applied): what forward()
  // adds to the gradient of the loss in training. The trainer sees only logits, and the
  // objectives are blind to a per-row constant added to them, so the tree adds the term's
  // gradient (not its value) on the way back: the logged loss does not include it.
  torch::Tensor split_penalty(const TreeRouting& r) const;

  const TreeOptions& options() const { return options_; }
  torch::nn::Linear inner{nullptr};  // w_i, b_i of the 2^depth - 1 inner nodes, heap order
  torch::Tensor leaf_logits;         // phi: (2^depth, num_classes)

 private:
  TreeOptions options_;
  std::vector<TreeLevel> levels_;
};

}  // namespace retort
