// bf16 autocast scopes.
#include "retort/precision.h"

#include <ATen/autocast_mode.h>

#include "retort/error.h"

namespace retort {

Precision parse_precision(const std::string& name, const std::string& key) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  fail(key, " must be fp32 or bf16, got \"", name, "\"");
}

const char* precision_name(Precision p) { return p == Precision::Bf16 ? "bf16" : "fp32"; }

AutocastScope::AutocastScope(Precision p, c10::Device device) : on_(p == Precision::Bf16), cuda_(device.is_cuda()) {
  if (!on_) return;
  if (cuda_) {
    was_enabled_ = at::autocast::is_enabled();
    prev_dtype_ = int(at::autocast::get_autocast_gpu_dtype());
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  } else {
    was_enabled_ = at::autocast::is_cpu_enabled();
    prev_dtype_ = int(at::autocast::get_autocast_cpu_dtype());
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  // Leaving the outermost scope drops the bf16 copies of the weights autocast kept.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(at::ScalarType(prev_dtype_));
  } else {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(at::ScalarType(prev_dtype_));
  }
}

}  // namespace retort
