// The model registry (filled once, explicitly: each model's factory and FLOP counter) and
// model folders on disk. Other model files (what `retort export` writes) are src/formats/.
#include <torch/serialize.h>

#include "cnn.h"
#include "gpt.h"
#include "mlp.h"
#include "model_flops.h"
#include "model_options.h"
#include "retort/error.h"
#include "retort/flops.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/model.h"
#include "retort/tokenizer.h"
#include "tree.h"

namespace retort {

GptOptions gpt_options_from(const nlohmann::json& o) {
  GptOptions g;
  g.vocab_size(model_option(o, "vocab_size", g.vocab_size()))
      .d_model(model_option(o, "d_model", g.d_model()))
      .n_layers(model_option(o, "n_layers", g.n_layers()))
      .n_heads(model_option(o, "n_heads", g.n_heads()))
      .n_kv_heads(model_option(o, "n_kv_heads", g.n_kv_heads()))
      .d_ff(model_option(o, "d_ff", g.d_ff()))
      .max_seq_len(model_option(o, "max_seq_len", g.max_seq_len()))
      .rope_theta(model_option(o, "rope_theta", g.rope_theta()))
      .tie_embeddings(model_option(o, "tie_embeddings", g.tie_embeddings()))
      .dropout(model_option(o, "dropout", g.dropout()))
      .norm_eps(model_option(o, "norm_eps", g.norm_eps()));
  return g;
}

TreeOptions tree_options_from(const nlohmann::json& o) {
  TreeOptions t;
  t.in_features(model_option<int64_t>(o, "in_channels", 1) * model_option<int64_t>(o, "height", 28) *
                model_option<int64_t>(o, "width", 28))
      .depth(model_option(o, "depth", t.depth()))
      .num_classes(model_option<int64_t>(o, "num_classes", 10))
      .beta(model_option(o, "beta", t.beta()))
      .split_penalty(model_option(o, "split_penalty", t.split_penalty()));
  return t;
}

namespace {

using json = nlohmann::json;


void check_positive(const std::string& model, const char* what, const std::vector<int64_t>& v) {
  for (auto x : v)
    if (x <= 0) fail(model, ": every entry of ", what, " must be >= 1, got ", x);
}

// One registry row: how to build the model, and how to count its FLOPs.
struct ModelEntry {
  ModelFactory make;          // options -> the model
  FlopCounter forward_flops;  // options, tokens per example -> FLOPs of one forward pass
};

const std::map<std::string, ModelEntry>& registry() {
  static const std::map<std::string, ModelEntry> r = {
      {"mlp",
       {[](const json& o) -> ModelPtr {
         MlpOptions m;
         m.in_features(model_option<int64_t>(o, "in_channels", 1) * model_option<int64_t>(o, "height", 28) *
                       model_option<int64_t>(o, "width", 28))
             .hidden(model_option(o, "hidden", m.hidden()))
             .num_classes(model_option<int64_t>(o, "num_classes", 10))
             .dropout(model_option<double>(o, "dropout", 0.0));
         check_positive("mlp", "hidden", m.hidden());
         return std::make_shared<MlpImpl>(m);
       },
        &mlp_forward_flops}},
      {"cnn",
       {[](const json& o) -> ModelPtr {
         CnnOptions c;
         c.in_channels(model_option<int64_t>(o, "in_channels", 1))
             .height(model_option<int64_t>(o, "height", 28))
             .width(model_option<int64_t>(o, "width", 28))
             .channels(model_option(o, "channels", c.channels()))
             .hidden(model_option(o, "hidden", c.hidden()))
             .num_classes(model_option<int64_t>(o, "num_classes", 10))
             .dropout(model_option<double>(o, "dropout", 0.0));
         check_positive("cnn", "channels", c.channels());
         check_positive("cnn", "hidden", c.hidden());
         return std::make_shared<CnnImpl>(c);
       },
        &cnn_forward_flops}},
      {"tree",
       {[](const json& o) -> ModelPtr {
         return std::make_shared<TreeImpl>(tree_options_from(o));  // TreeImpl names a bad depth or beta
       },
        &tree_forward_flops}},
      {"gpt",
       {[](const json& o) -> ModelPtr {
         return std::make_shared<GptImpl>(gpt_options_from(o));  // GptImpl validates and names a bad value
       },
        &gpt_forward_flops}},
  };
  return r;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& [k, _] : registry()) out.push_back(k);
  return out;
}

ModelPtr make_model(const ModelSpec& spec) {
  auto it = registry().find(spec.name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    fail("unknown model '", spec.name, "'; known models: ", known);
  }
  return it->second.make(spec.options);
}

double forward_flops_per_example(const ModelSpec& spec, int64_t seq_len) {
  auto it = registry().find(spec.name);
  if (it == registry().end() || !it->second.forward_flops) {
    std::vector<std::string> counted;
    for (const auto& [name, entry] : registry())
      if (entry.forward_flops) counted.push_back(name);
    std::string known;  // "cnn, gpt and mlp"
    for (size_t i = 0; i < counted.size(); ++i)
      known += (i == 0 ? "" : i + 1 == counted.size() ? " and " : ", ") + counted[i];
    fail("no FLOP count for model '", spec.name, "': counts are known for the registry models ",
         known, " only");
  }
  return it->second.forward_flops(spec.options, seq_len);
}

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

torch::Device model_device(const torch::nn::Module& m) {
  auto params = m.parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

std::vector<torch::Tensor> model_state(const torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.value());
  for (const auto& b : m.named_buffers()) out.push_back(b.value());
  return out;
}

int64_t save_model(const ModelImpl& model, const ModelSpec& spec, const std::filesystem::path& dir) {
  json meta = {{"format", "retort-model"}, {"version", 1}, {"name", spec.name},
               {"options", spec.options}, {"params", count_parameters(model)}};
  atomic_write(dir / "model.pt", [&](const fs::path& tmp) {
    torch::serialize::OutputArchive archive;
    model.save(archive);
    archive.save_to(tmp.string());
    meta["weights_digest"] = file_digest(tmp);
  });
  // Written after model.pt: a kill in between leaves an old model.json whose digest refuses the new weights.
  atomic_write_text(dir / "model.json", meta.dump(2) + "\n");
  return model_size_on_disk(dir);
}

int64_t model_size_on_disk(const std::filesystem::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) return static_cast<int64_t>(fs::file_size(dir));  // a .gguf file
  auto n = fs::file_size(dir / "model.pt", ec);
  if (ec) n = fs::file_size(dir / "model.safetensors", ec);  // a folder `retort export` wrote
  return ec ? 0 : static_cast<int64_t>(n);
}

bool is_model_folder(const std::filesystem::path& path) {
  return fs::exists(path / "model.json") || fs::exists(path / "model" / "model.json");
}

LoadedModel load_model_folder(const std::filesystem::path& path) {
  fs::path dir = path;
  if (!fs::exists(dir / "model.json") && fs::exists(dir / "model" / "model.json")) dir = dir / "model";
  if (!fs::exists(dir / "model.json"))
    fail("no model folder at '", path.string(),
         "': expected model.json there or in its model/ folder");
  json meta;
  try {
    meta = json::parse(read_text(dir / "model.json"));
  } catch (const json::exception& e) {
    fail("model file ", (dir / "model.json").string(), " is not valid JSON: ", e.what());
  }
  if (meta.value("format", "") != "retort-model")
    fail((dir / "model.json").string(), " is not a retort model description");
  LoadedModel out;
  out.spec = {meta.at("name").get<std::string>(), meta.at("options")};
  out.model = make_model(out.spec);
  out.dir = dir;
  // One read: the bytes hashed are the bytes loaded.
  const fs::path weights = dir / "model.pt";
  const std::vector<uint8_t> bytes = read_bytes(weights);
  const json& recorded = meta.contains("weights_digest") ? meta.at("weights_digest") : json();
  check_digest(cat("model weights ", weights.string()), digest_text(Hasher().update(bytes.data(), bytes.size())),
               recorded.is_string() ? recorded.get<std::string>() : "", (dir / "model.json").string());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    out.model->load(archive);
  } catch (const c10::Error& e) {
    fail("model weights ", weights.string(), " cannot be loaded (corrupt or from another model): ",
         e.what_without_backtrace());
  }
  if (fs::exists(dir / "tokenizer.json")) out.tokenizer = load_tokenizer(dir);
  return out;
}

std::shared_ptr<Tokenizer> tokenizer_of_model(const LoadedModel& m) {
  if (!m.tokenizer)
    fail("the model at ", m.dir.string(),
         " has no tokenizer: it is not a language model saved by retort");
  return m.tokenizer;
}

}  // namespace retort
