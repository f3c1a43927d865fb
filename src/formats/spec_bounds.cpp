// A model file's spec checked against the file's size before the model is built (spec_bounds.h).
#include "formats/spec_bounds.h"

#include "retort/error.h"
#include "retort/flops.h"

namespace retort {

void check_spec_fits(const ModelSpec& spec, uint64_t weight_bytes, const std::string& where) {
  if (spec.name != "gpt" && spec.name != "mlp") return;
  // The forward FLOPs of one example (one token for a gpt) are twice the weight matrices (every
  // product a multiply-add) plus, for a gpt, 4 d_model per layer of attention scores, which its
  // 4 d_model^2 attention weights per layer exceed. Each weight is stored in 2 bytes at least.
  double flops = 0;
  try {
    flops = forward_flops_per_example(spec, 1);
  } catch (const Error& e) {
    fail(where, " describes no model retort can build: ", e.what());
  }
  if (flops > 2.0 * static_cast<double>(weight_bytes))
    fail(where, " describes a ", spec.name, " of about ", static_cast<int64_t>(flops / 2),
         " weights, more than ", weight_bytes, " bytes of weights can hold");
  const nlohmann::json& o = spec.options;
  if (spec.name == "gpt" && o.contains("max_seq_len") && o["max_seq_len"].is_number_integer() &&
      o["max_seq_len"].get<int64_t>() > (int64_t{1} << 20))
    fail(where, " gives max_seq_len ", o["max_seq_len"].get<int64_t>(),
         ", above the 2^20 positions retort trains");
}

}  // namespace retort
