// Each registry model's FLOP counter (src/models/flops.cpp), which the registry names next to
// the model's factory; forward_flops_per_example (retort/flops.h) picks one by model name.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

namespace retort {

// FLOPs of one forward pass of one example, from a spec's options with the factory's defaults;
// seq_len is the tokens per example (gpt), ignored by the classifiers. Bad options -> Error.
using FlopCounter = double (*)(const nlohmann::json& options, int64_t seq_len);

double mlp_forward_flops(const nlohmann::json& options, int64_t seq_len);
double cnn_forward_flops(const nlohmann::json& options, int64_t seq_len);
double tree_forward_flops(const nlohmann::json& options, int64_t seq_len);
double gpt_forward_flops(const nlohmann::json& options, int64_t seq_len);

}  // namespace retort
