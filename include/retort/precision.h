// Numeric precision of a forward pass: fp32, or bf16 through autocast (matrix products and
// convolutions in bfloat16, weights, norms and losses in fp32). On CPUs with AVX-512 BF16 a
// bf16 matrix product runs about twice as fast as fp32.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace retort {

enum class Precision { Fp32, Bf16 };

// "fp32" | "bf16"; anything else -> Error naming `key`.
Precision parse_precision(const std::string& name, const std::string& key);
const char* precision_name(Precision p);

// Autocast to bf16 for the current thread while alive (nothing for fp32). Nests.
class AutocastScope {
 public:
  AutocastScope(Precision p, c10::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_ = false, cuda_ = false, was_enabled_ = false;
  int prev_dtype_ = 0;
};

}  // namespace retort
