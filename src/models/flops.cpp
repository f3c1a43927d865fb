// Analytic FLOP counts of the registry models (see retort/flops.h); the registry
// (registry.cpp) names each model's counter next to its factory. The counts read spec.options
// with the same keys and defaults as the factories; tests/unit/flops_test.cpp checks them
// against the Linear modules of the built models.
#include "model_flops.h"

#include <vector>

#include "cnn.h"
#include "mlp.h"
#include "model_options.h"
#include "retort/error.h"
#include "retort/flops.h"

namespace retort {

namespace {

using json = nlohmann::json;

// y = x W^T (+ b): one multiply-add per weight; the bias adds are ignored.
double linear_flops(int64_t in, int64_t out) { return 2.0 * static_cast<double>(in) * out; }

// flatten -> hidden Linears -> head, from `in` features; as MlpImpl and CnnImpl's classifier.
double classifier_flops(const std::string& model, int64_t in, const std::vector<int64_t>& hidden,
                        int64_t num_classes) {
  double flops = 0;
  for (int64_t h : hidden) {
    if (h < 1) fail(model, ": every entry of hidden must be >= 1, got ", h);
    flops += linear_flops(in, h);
    in = h;
  }
  return flops + linear_flops(in, num_classes);
}

}  // namespace

double mlp_forward_flops(const json& o, int64_t /*seq_len*/) {
  const int64_t in = model_option<int64_t>(o, "in_channels", 1) * model_option<int64_t>(o, "height", 28) *
                     model_option<int64_t>(o, "width", 28);
  return classifier_flops("mlp", in, model_option(o, "hidden", MlpOptions().hidden()),
                          model_option<int64_t>(o, "num_classes", 10));
}

double cnn_forward_flops(const json& o, int64_t /*seq_len*/) {
  const CnnOptions d;
  const std::vector<int64_t> channels = model_option(o, "channels", d.channels());
  int64_t in = model_option<int64_t>(o, "in_channels", 1), h = model_option<int64_t>(o, "height", 28),
          w = model_option<int64_t>(o, "width", 28);
  const int64_t height = h, width = w;
  double flops = 0;
  for (int64_t c : channels) {
    if (c < 1) fail("cnn: every entry of channels must be >= 1, got ", c);
    // Conv2d(in, c, 3, padding 1) keeps h x w; each output is a 3x3 x in dot product.
    flops += 2.0 * in * c * 9 * h * w;
    in = c;
    h /= 2;  // MaxPool2d(2), floor as torch does
    w /= 2;
    if (h == 0 || w == 0)
      fail("cnn: ", channels.size(), " pooling stages shrink a ", height, "x", width,
           " image to nothing");
  }
  return flops + classifier_flops("cnn", in * h * w, model_option(o, "hidden", d.hidden()),
                                  model_option<int64_t>(o, "num_classes", 10));
}

double tree_forward_flops(const json& o, int64_t /*seq_len*/) {
  const TreeOptions t = tree_options_from(o);
  if (t.depth() < 1 || t.depth() > 12) fail("tree: depth must be 1 to 12 (2 to 4096 leaves), got ", t.depth());
  const int64_t leaves = int64_t{1} << t.depth();
  // Every inner node's filter (one Linear to 2^d - 1 outputs), the path products (per level and
  // leaf: p * sign + offset, then one multiply) and the mixture of leaf distributions (2^d x C).
  return linear_flops(t.in_features(), leaves - 1) + 3.0 * t.depth() * leaves +
         linear_flops(leaves, t.num_classes());
}

double gpt_forward_flops(const json& o, int64_t T) {
  const GptOptions r = resolve_gpt_options(gpt_options_from(o));  // fills n_kv_heads, d_ff; names a bad value
  if (T < 1) fail("gpt: FLOPs per example need the tokens per example (seq_len >= 1), got ", T);
  if (T > r.max_seq_len())
    fail("gpt: seq_len ", T, " is longer than the model's max_seq_len ", r.max_seq_len());
  const int64_t d = r.d_model(), hd = d / r.n_heads();
  // Per token and layer: qkv (d -> (H + 2G) * hd), proj (H * hd -> d), SwiGLU w1, w3, w2.
  const double per_token_layer = linear_flops(d, (r.n_heads() + 2 * r.n_kv_heads()) * hd) +
                                 linear_flops(r.n_heads() * hd, d) + 3 * linear_flops(d, r.d_ff());
  // Per layer: scores Q K^T (H heads of T x hd by hd x T) and P V (T x T by T x hd): 2*T*T*d each.
  // Grouped-query attention shares k and v but every query head still does its own products.
  // The causal mask hides half the scores, yet the model computes (and we count) all T x T.
  const double attention_layer = 2 * (2.0 * T * T * d);
  const double head = linear_flops(d, r.vocab_size());  // tied: F::linear with the embedding
  return r.n_layers() * (T * per_token_layer + attention_layer) + T * head;
}

double train_step_flops(const ModelSpec& spec, int64_t examples, int64_t seq_len) {
  if (examples < 0) fail("train_step_flops: examples must be >= 0, got ", examples);
  return 3.0 * forward_flops_per_example(spec, seq_len) * static_cast<double>(examples);
}

}  // namespace retort
