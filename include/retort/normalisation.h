// What a classifier's input must hold: (pixel / 255 - mean) / std, as retort's data loader
// normalises images (data.mean, data.std of the run that trained it). `retort serve` applies it
// to the pixels /v1/classify receives; ONNX exports record it for their users.
#pragma once
#include <filesystem>
#include <string>

namespace retort {

struct InputNormalisation {
  double mean = 0, std = 1;
  std::string source;  // where the numbers came from
};

// The numbers of the run the model at `model_dir` was trained in: its resolved config.toml sits
// in or above the model folder (runs/X/model; the demo's runs/demo/students/NAME/model). Without
// one (or with a config.toml that is not a retort run's), retort's defaults, saying so in source.
InputNormalisation input_normalisation(const std::filesystem::path& model_dir);

}  // namespace retort
