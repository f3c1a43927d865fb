// The matmul throughput probe (see matmul_probe.h).
#include "retort/matmul_probe.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "retort/error.h"

namespace retort {

double measure_matmul_gflops(torch::ScalarType dtype, int64_t n, double min_seconds) {
  if (!c10::isFloatingType(dtype))
    fail("measure_matmul_gflops: dtype must be floating point, got ", c10::toString(dtype));
  if (n < 1) fail("measure_matmul_gflops: n must be >= 1, got ", n);
  if (!(min_seconds >= 0))
    fail("measure_matmul_gflops: min_seconds must be >= 0, got ", min_seconds);
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(dtype);
  // a, b, c: (n, n); values in [-1, 1) so bf16 products stay finite
  torch::Tensor a = torch::rand({n, n}, options) * 2 - 1;
  torch::Tensor b = torch::rand({n, n}, options) * 2 - 1;
  torch::Tensor c = torch::empty({n, n}, options);
  torch::mm_out(c, a, b);  // warm-up: thread pool start, packing buffers, first-touch of c

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  int64_t products = 0;
  double seconds = 0;
  do {
    torch::mm_out(c, a, b);
    ++products;
    seconds = std::chrono::duration<double>(clock::now() - start).count();
  } while (seconds < min_seconds);
  const double flops = 2.0 * std::pow(static_cast<double>(n), 3) * static_cast<double>(products);
  return flops / std::max(seconds, 1e-9) / 1e9;
}

}  // namespace retort
