// Models: torch modules built by name from options through an explicit registry,
// saved as a folder (model.json: name + options; model.pt: weights).
#pragma once
#include <torch/nn/module.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace retort {

class Tokenizer;

struct ModelOutput {
  torch::Tensor logits;               // (B, V) for classifiers, (B, T, V) for language models (gpt)
  std::vector<torch::Tensor> hidden;  // optional intermediate features, outermost last (gpt: final
                                      // normed states (B, T, D))
};

// Base of every retort model: input -> predictions. Losses live in Objective.
class ModelImpl : public torch::nn::Module {
 public:
  virtual ModelOutput forward(const torch::Tensor& x) = 0;
};
using ModelPtr = std::shared_ptr<ModelImpl>;

// What the registry needs to build a model again: its name and options.
// Options for classifiers: in_channels, height, width, num_classes, and per model
// hidden (list), channels (list), dropout. For gpt: vocab_size, d_model, n_layers, n_heads,
// n_kv_heads, d_ff, max_seq_len, rope_theta, tie_embeddings, dropout, norm_eps (GptOptions).
struct ModelSpec {
  std::string name;        // "mlp", "cnn", ...
  nlohmann::json options;  // model-specific, all fields explicit
};

using ModelFactory = std::function<ModelPtr(const nlohmann::json& options)>;

// Builds a model by name; an unknown name throws an error listing the known ones.
ModelPtr make_model(const ModelSpec& spec);
std::vector<std::string> model_names();

int64_t count_parameters(const torch::nn::Module& m);
// The device of the model's first parameter (CPU for a model without parameters).
torch::Device model_device(const torch::nn::Module& m);

// Writes `dir`/model.pt then `dir`/model.json (with "weights_digest", the digest of model.pt),
// each atomically. Returns bytes on disk.
int64_t save_model(const ModelImpl& model, const ModelSpec& spec, const std::filesystem::path& dir);

struct LoadedModel {
  ModelPtr model;
  ModelSpec spec;
  std::filesystem::path dir;             // the folder (or file) the model was read from
  std::shared_ptr<Tokenizer> tokenizer;  // language models: their tokenizer; null for classifiers
};
// A model folder save_model wrote (has model.json) or a run folder (has model/model.json);
// neither -> Error. model.pt must match model.json's "weights_digest" (else Damaged naming the
// file and both digests); a folder without one (an older retort) loads with a warning on stderr.
// Any model file, what `retort export` wrote included: load_model (retort/load_model.h).
LoadedModel load_model_folder(const std::filesystem::path& path);
// True when `path` holds model.json, itself or in its model/ folder.
bool is_model_folder(const std::filesystem::path& path);
int64_t model_size_on_disk(const std::filesystem::path& dir);
// The model's tokenizer (saved beside language models by LM runs); Error naming the folder when
// it has none.
std::shared_ptr<Tokenizer> tokenizer_of_model(const LoadedModel& model);

// A TorchScript module saved from PyTorch (torch.jit.trace / torch.jit.script, then .save()):
// a classifier (images (B, C, H, W) float32 -> logits (B, classes)) or a language model (ids
// (B, T) int64 -> logits (B, T, V)); it may return a tensor, a tuple or list whose first tensor
// is the logits, or a dict with "logits". spec.name = "torchscript". A tokenizer.json saved by
// retort beside the file becomes the model's tokenizer. Not a TorchScript file -> Error.
LoadedModel load_torchscript(const std::filesystem::path& file);
// Runs ids (2, T) through a language model and returns its vocabulary size V; other shapes
// -> Error naming the expected [2, T, V] and what came back.
int64_t probe_lm_vocabulary(ModelImpl& model, int64_t T, const std::string& who);

// Weights + buffers as one flat list, for hashing and comparisons.
std::vector<torch::Tensor> model_state(const torch::nn::Module& m);

// Weight selection (Xu et al. 2024): student layer i <- teacher layer i * Lt / Ls, and in every
// matrix the evenly spaced residual dims, SwiGLU units and head dims (RoPE-aligned), first heads.
// Both gpt with equal vocab_size and heads / kv_heads, the student no wider or deeper; otherwise
// throws retort::Error naming the first mismatch and both shapes. Returns a one-line description,
// e.g. "layers 0,2,4,6 of 8" (+ "; d_model 96 of 192, ..." when narrower).
std::string init_student_from_teacher(ModelImpl& student, ModelImpl& teacher);

}  // namespace retort
