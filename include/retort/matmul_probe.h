// The measured matmul peak of this machine (`retort doctor`), which the analytic FLOP counts
// of the models (retort/flops.h) are compared against.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace retort {

// Measured CPU throughput in GFLOP/s of n x n by n x n matrix products in `dtype` (torch::kFloat,
// torch::kBFloat16) with libtorch's current intra-op thread count: one warm-up product, then
// products until min_seconds have passed (at least one). Counts 2 * n^3 FLOPs per product.
// An unsupported dtype throws (retort::Error for non-floating types, c10::Error from torch).
double measure_matmul_gflops(torch::ScalarType dtype, int64_t n, double min_seconds);

}  // namespace retort
