// Shared helpers for the unit tests: temporary folders and tiny synthetic data.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <random>
#include <string>

#include <functional>

#include <nlohmann/json.hpp>

#include "retort/data.h"
#include "retort/error.h"
#include "retort/model.h"
#include "retort/tokenizer.h"

namespace retort::testing {

// A fresh empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("retort-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// n images (1, 8, 8) in 4 classes whose label is learnable from the pixels.
inline ImageSet tiny_image_set(int64_t n, uint64_t seed = 7) {
  torch::manual_seed(seed);
  ImageSet s;
  s.labels = torch::randint(0, 4, {n}, torch::kInt64);
  s.images = torch::randn({n, 1, 8, 8}) * 0.5;
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = s.labels[i].item<int64_t>();
    s.images[i][0][c * 2].add_(1.5);  // the class lights up a row
  }
  s.num_classes = 4;
  s.black = -1;
  s.source = "synthetic";
  return s;
}

// A small gpt with the byte tokenizer, as load_model would give it: V 40, d 32, 2 layers, 4 query
// heads; `extra` overrides options. Weights scaled up so that logits are far from uniform and
// every weight matters (the export tests).
inline LoadedModel tiny_gpt(nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json o = {{"vocab_size", 40}, {"d_model", 32}, {"n_layers", 2}, {"n_heads", 4}, {"max_seq_len", 16}};
  o.update(extra);
  torch::manual_seed(5);
  LoadedModel m;
  m.spec = {"gpt", o};
  m.model = make_model(m.spec);
  torch::NoGradGuard no_grad;
  for (auto& p : m.model->parameters()) p.mul_(10).add_(0.01);  // norms away from 1 too
  m.model->eval();
  m.tokenizer = make_byte_tokenizer();
  return m;
}

// The message of the retort::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace retort::testing
