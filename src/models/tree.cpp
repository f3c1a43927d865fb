#include "tree.h"

#include <torch/torch.h>

#include "retort/distributed.h"
#include "retort/error.h"

namespace retort {

namespace {

// Identity on the logits; on the way back it also hands `penalty` the gradient `scale`, so that
// d(loss)/d(theta) gains scale * d(penalty)/d(theta) as if scale * penalty were added to the loss.
struct SplitPenaltyGradient : torch::autograd::Function<SplitPenaltyGradient> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& penalty, double scale) {
    ctx->saved_data["scale"] = scale;
    return logits.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const double scale = ctx->saved_data["scale"].toDouble();
    return {grad[0], torch::scalar_tensor(scale, grad[0].options()), torch::Tensor()};
  }
};

}  // namespace

std::vector<TreeLevel> tree_levels(int64_t depth) {
  const int64_t leaves = int64_t{1} << depth;
  std::vector<TreeLevel> out;
  for (int64_t k = 0; k < depth; ++k) {
    std::vector<int64_t> node(leaves);
    std::vector<float> sign(leaves), offset(leaves);
    for (int64_t l = 0; l < leaves; ++l) {
      node[l] = ((int64_t{1} << k) - 1) + (l >> (depth - k));  // first node of level k + position
      const bool right = (l >> (depth - k - 1)) & 1;
      sign[l] = right ? 1.0f : -1.0f;
      offset[l] = right ? 0.0f : 1.0f;
    }
    out.push_back({torch::tensor(node, torch::kInt64), torch::tensor(sign), torch::tensor(offset)});
  }
  return out;
}

TreeImpl::TreeImpl(const TreeOptions& o) : options_(o) {
  if (o.depth() < 1 || o.depth() > 12)
    fail("tree: depth must be 1 to 12 (2 to 4096 leaves), got ", o.depth());
  if (o.in_features() < 1) fail("tree: in_features must be >= 1, got ", o.in_features());
  if (o.num_classes() < 2) fail("tree: num_classes must be >= 2, got ", o.num_classes());
  if (!(o.beta() > 0)) fail("tree: beta (the inverse temperature) must be > 0, got ", o.beta());
  if (!(o.split_penalty() >= 0)) fail("tree: split_penalty must be >= 0, got ", o.split_penalty());
  const int64_t leaves = int64_t{1} << o.depth();
  inner = register_module("inner", torch::nn::Linear(o.in_features(), leaves - 1));
  // Small random leaves: equal leaves would make the mixture blind to the routing at the start.
  leaf_logits = register_parameter("leaf_logits", torch::randn({leaves, o.num_classes()}) * 0.1);
  levels_ = tree_levels(o.depth());
}

TreeRouting TreeImpl::route(const torch::Tensor& x) {
  TreeRouting r;
  r.right = torch::sigmoid(inner->forward(x.flatten(1)) * options_.beta());  // (B, 2^d - 1)
  for (const TreeLevel& level : levels_) {
    // (B, 2^d): p of each leaf's ancestor at this level, turned into the branch taken.
    torch::Tensor factor = r.right.index_select(1, level.node.to(x.device())) * level.sign.to(r.right) +
                           level.offset.to(r.right);
    r.leaf = r.leaf.defined() ? r.leaf * factor : factor;
  }
  return r;
}

torch::Tensor TreeImpl::leaf_distributions() const { return torch::softmax(leaf_logits, 1); }

ModelOutput TreeImpl::forward(const torch::Tensor& x) {
  TreeRouting r = route(x);
  torch::Tensor logits = torch::log(r.leaf.matmul(leaf_distributions()));  // (B, C)
  if (is_training() && options_.split_penalty() > 0 && torch::GradMode::is_enabled()) {
    // Data parallelism sums the ranks' gradients: each rank adds its share of the term.
    logits = SplitPenaltyGradient::apply(logits, split_penalty(r), 1.0 / dist::world_size());
  }
  return {logits, {r.leaf}};
}

torch::Tensor TreeImpl::max_path_logits(const torch::Tensor& x) {
  torch::Tensor best = route(x).leaf.argmax(1);                          // (B)
  return torch::log_softmax(leaf_logits, 1).index_select(0, best);     // (B, C)
}

torch::Tensor TreeImpl::split_penalty(const TreeRouting& r) const {
  const double eps = 1e-6;
  const int64_t B = r.leaf.size(0), leaves = r.leaf.size(1);
  torch::Tensor total = torch::zeros({}, r.leaf.options());
  for (int64_t k = 0; k < options_.depth(); ++k) {
    const int64_t n = int64_t{1} << k;
    torch::Tensor reach = r.leaf.view({B, n, leaves / n}).sum(2);  // (B, n): P^i(x) of level k's nodes
    torch::Tensor right = r.right.narrow(1, n - 1, n);              // (B, n)
    torch::Tensor alpha = ((reach * right).sum(0) / reach.sum(0).clamp_min(eps)).clamp(eps, 1 - eps);
    total = total - options_.split_penalty() * std::pow(2.0, -double(k)) * 0.5 *
                        (torch::log(alpha) + torch::log1p(-alpha)).sum();
  }
  return total;
}

}  // namespace retort
