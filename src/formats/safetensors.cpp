// safetensors folders of retort models (see formats.h): gpt in the Hugging Face Llama layout
// (LlamaForCausalLM reads the folder as it is), other models under retort's own parameter names.
// The file format itself is safetensors_io.cpp.
//
// A folder:  model.safetensors           the weights (written first)
//            retort_tokenizer/           language models: retort's tokenizer files
//            tokenizer.model             SentencePiece models: the model again, for HF's
//            tokenizer_config.json         LlamaTokenizer
//            config.json                 written last; its "retort" object rebuilds the model
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "formats/safetensors_io.h"
#include "formats/spec_bounds.h"
#include "models/gpt.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/json_depth.h"
#include "retort/tokenizer.h"

namespace retort {

namespace {

using json = nlohmann::json;

constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kConfigFile = "config.json";
constexpr const char* kTokenizerDir = "retort_tokenizer";
constexpr int kFormatVersion = 1;  // of the "retort" object in config.json

// Every tensor of `model` under its name in the folder, as views of the model's own tensors:
// export reads them, import copies into them, so both directions share this one mapping.
// gpt: the Hugging Face Llama names, q/k/v as row blocks of retort's fused qkv; w1, w3, w2 are
// gate, up, down. retort's RoPE (rotate_half) and RMSNorm are Llama's, so nothing is permuted.
NamedTensors folder_tensors(ModelImpl& model) {
  NamedTensors out;
  auto* gpt = dynamic_cast<GptImpl*>(&model);
  if (!gpt) {
    for (const auto& p : model.named_parameters()) out.emplace_back(p.key(), p.value());
    for (const auto& b : model.named_buffers()) out.emplace_back(b.key(), b.value());
    return out;
  }
  const GptOptions& o = gpt->options();
  const int64_t q_rows = o.n_heads() * gpt->head_dim(), kv_rows = o.n_kv_heads() * gpt->head_dim();
  out.emplace_back("model.embed_tokens.weight", gpt->tok_emb->weight);
  for (int64_t i = 0; i < o.n_layers(); ++i) {
    auto& b = *gpt->blocks->ptr<GptBlockImpl>(i);
    const std::string p = cat("model.layers.", i, ".");
    const torch::Tensor& qkv = b.attn->qkv->weight;  // (q_rows + 2 * kv_rows, d_model)
    out.emplace_back(p + "input_layernorm.weight", b.attn_norm->weight);
    out.emplace_back(p + "self_attn.q_proj.weight", qkv.narrow(0, 0, q_rows));
    out.emplace_back(p + "self_attn.k_proj.weight", qkv.narrow(0, q_rows, kv_rows));
    out.emplace_back(p + "self_attn.v_proj.weight", qkv.narrow(0, q_rows + kv_rows, kv_rows));
    out.emplace_back(p + "self_attn.o_proj.weight", b.attn->proj->weight);
    out.emplace_back(p + "post_attention_layernorm.weight", b.mlp_norm->weight);
    out.emplace_back(p + "mlp.gate_proj.weight", b.mlp->w1->weight);
    out.emplace_back(p + "mlp.up_proj.weight", b.mlp->w3->weight);
    out.emplace_back(p + "mlp.down_proj.weight", b.mlp->w2->weight);
  }
  out.emplace_back("model.norm.weight", gpt->norm->weight);
  if (gpt->head) out.emplace_back("lm_head.weight", gpt->head->weight);

  // A parameter added to the gpt but not named above would be lost silently.
  int64_t named = 0;
  for (const auto& [name, t] : out) named += t.numel();
  if (named != count_parameters(*gpt))
    fail("safetensors: the Llama layout names ", named, " of the gpt's ", count_parameters(*gpt),
         " parameters; src/formats/safetensors.cpp must learn the others");
  return out;
}

// config.json that transformers' LlamaForCausalLM accepts, plus retort's own spec.
json llama_config(const GptImpl& gpt, const ModelSpec& spec, const std::string& torch_dtype) {
  const GptOptions& o = gpt.options();
  return {
      {"architectures", json::array({"LlamaForCausalLM"})},
      {"model_type", "llama"},
      {"hidden_size", o.d_model()},
      {"intermediate_size", o.d_ff()},
      {"num_hidden_layers", o.n_layers()},
      {"num_attention_heads", o.n_heads()},
      {"num_key_value_heads", o.n_kv_heads()},
      {"head_dim", gpt.head_dim()},
      {"vocab_size", o.vocab_size()},
      {"max_position_embeddings", o.max_seq_len()},
      {"rms_norm_eps", o.norm_eps()},
      {"rope_theta", o.rope_theta()},
      {"rope_scaling", nullptr},
      {"tie_word_embeddings", o.tie_embeddings()},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"torch_dtype", torch_dtype},
      {"bos_token_id", nullptr},  // retort's language models use no <s> or </s>
      {"eos_token_id", nullptr},
      {"pad_token_id", nullptr},
      {"retort", {{"version", kFormatVersion}, {"name", spec.name}, {"options", spec.options}}}};
}

// For HF's slow LlamaTokenizer over tokenizer.model: no <s>/</s> (the model has none) and no
// prefix space (retort trains SentencePiece without a dummy prefix). retort's own tokenizer stays
// the reference: it also byte-encodes text SentencePiece would alter (see tokenizer.h).
json llama_tokenizer_config(const GptImpl& gpt) {
  return {{"tokenizer_class", "LlamaTokenizer"},
          {"add_bos_token", false},
          {"add_eos_token", false},
          {"add_prefix_space", false},
          {"legacy", false},
          {"bos_token", nullptr},
          {"eos_token", nullptr},
          {"pad_token", nullptr},
          {"unk_token", "<unk>"},
          {"clean_up_tokenization_spaces", false},
          {"model_max_length", gpt.options().max_seq_len()}};
}

// "2.1 MB": sizes for the one-line summary (decimal units).
std::string size_text(int64_t bytes) {
  if (bytes < 1000) return cat(bytes, " bytes");
  if (bytes < 1000 * 1000) return cat(decimals(bytes / 1e3, 1), " kB");
  if (bytes < 1000 * 1000 * 1000) return cat(decimals(bytes / 1e6, 1), " MB");
  return cat(decimals(bytes / 1e9, 2), " GB");
}

}  // namespace

// ---- export ------------------------------------------------------------------------------

ExportResult export_safetensors(const LoadedModel& m, const fs::path& dir,
                                const ExportOptions& options) {
  if (options.dtype != "f32" && options.dtype != "f16")
    fail("safetensors export dtype must be f32 or f16, got \"", options.dtype, "\"");
  if (fs::exists(dir) && !fs::is_directory(dir))
    fail("safetensors export writes a folder, but ", dir.string(), " is a file");
  const bool half = options.dtype == "f16";
  const auto* gpt = dynamic_cast<const GptImpl*>(m.model.get());

  torch::NoGradGuard no_grad;
  NamedTensors tensors = folder_tensors(*m.model);
  for (auto& [name, t] : tensors) {
    if (!half || !t.is_floating_point()) continue;  // integer buffers keep their type
    torch::Tensor h = t.to(torch::kFloat16);
    if (!torch::isfinite(h).all().item<bool>() && torch::isfinite(t).all().item<bool>())
      fail("cannot export \"", name, "\" as f16: it holds values up to ",
           t.abs().max().item<double>(), ", beyond float16's 65504; export as f32");
    t = h;
  }

  // What an earlier export into the same folder may have left that this one would not replace.
  std::error_code ec;
  for (const char* old : {"tokenizer.model", "tokenizer_config.json", kTokenizerDir})
    fs::remove_all(dir / old, ec);

  ExportResult r;
  const int64_t weight_bytes = write_safetensors(dir / kWeightsFile, tensors,
                                                 {{"format", "pt"},
                                                  {"producer", "retort"},
                                                  {"retort_model", m.spec.name},
                                                  {"dtype", options.dtype},
                                                  {"layout", gpt ? "llama" : "retort"}});
  r.files.push_back(dir / kWeightsFile);

  if (m.tokenizer) {
    m.tokenizer->save(dir / kTokenizerDir);
    TokenizerFiles f = m.tokenizer->files();
    r.files.push_back(dir / kTokenizerDir / "tokenizer.json");
    if (!f.model.empty()) {
      r.files.push_back(dir / kTokenizerDir / "tokenizer.model");
      atomic_write_text(dir / "tokenizer.model", f.model);
      r.files.push_back(dir / "tokenizer.model");
      if (gpt) {
        atomic_write_text(dir / "tokenizer_config.json",
                          llama_tokenizer_config(*gpt).dump(2) + "\n");
        r.files.push_back(dir / "tokenizer_config.json");
      }
    }
  }

  const std::string torch_dtype = half ? "float16" : "float32";
  json config = gpt ? llama_config(*gpt, m.spec, torch_dtype)
                    : json{{"format", "retort-safetensors"},
                           {"torch_dtype", torch_dtype},
                           {"retort",
                            {{"version", kFormatVersion},
                             {"name", m.spec.name},
                             {"options", m.spec.options}}}};
  atomic_write_text(dir / kConfigFile, config.dump(2) + "\n");
  r.files.push_back(dir / kConfigFile);

  for (const auto& f : r.files) r.bytes += static_cast<int64_t>(fs::file_size(f));
  std::string shown = dir.string();
  if (shown.empty() || shown.back() != '/') shown += '/';
  r.summary = cat("wrote ", shown, " (", kWeightsFile, " ", size_text(weight_bytes), ", ",
                  tensors.size(), " tensors, ", options.dtype, gpt ? ", Llama layout" : "", "; ",
                  kConfigFile, m.tokenizer ? "; tokenizer" : "", ")");
  return r;
}

// ---- import ------------------------------------------------------------------------------

bool is_safetensors_folder(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(path / kWeightsFile, ec) &&
         fs::is_regular_file(path / kConfigFile, ec);
}

LoadedModel import_safetensors(const fs::path& dir) {
  const fs::path config_path = dir / kConfigFile, weights_path = dir / kWeightsFile;
  const std::string config_text = read_text(config_path);
  if (json_nests_deeper_than(config_text))
    fail(config_path.string(), " nests more than ", kMaxJsonDepth, " levels deep");
  json config;
  try {
    config = json::parse(config_text);
  } catch (const json::exception& e) {
    fail(config_path.string(), " is not valid JSON: ", e.what());
  }
  const json* spec =
      config.is_object() && config.contains("retort") ? &config.at("retort") : nullptr;
  if (!spec || !spec->is_object() || !spec->contains("name") || !spec->at("name").is_string() ||
      !spec->contains("options") || !spec->at("options").is_object())
    fail(config_path.string(),
         " has no \"retort\" object with the model's name and options (not written by ",
         "retort export)");

  LoadedModel out;
  out.spec = {spec->at("name").get<std::string>(), spec->at("options")};
  // The weights first (read whole and checked, memory bounded by the file), so that the spec can
  // be held against them before the model it describes is built.
  SafetensorsFile file = read_safetensors(weights_path);
  std::error_code ec;
  check_spec_fits(out.spec, fs::file_size(weights_path, ec), config_path.string());
  try {
    out.model = make_model(out.spec);
  } catch (const Error& e) {
    fail(config_path.string(), " describes no model retort can build: ", e.what());
  }
  out.dir = dir;

  const std::string where = cat("safetensors file ", weights_path.string());
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : folder_tensors(*out.model)) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end())
      fail(where, " has no tensor \"", name, "\" (expected shape ", target.sizes(), " for the ",
           out.spec.name, " in ", kConfigFile, ")");
    const torch::Tensor& t = it->second;
    if (t.sizes() != target.sizes())
      fail(where, ": tensor \"", name, "\" has shape ", t.sizes(), ", the ", out.spec.name, " in ",
           kConfigFile, " expects ", target.sizes());
    if (t.is_floating_point() != target.is_floating_point())
      fail(where, ": tensor \"", name, "\" is ", t.scalar_type(), ", the ", out.spec.name,
           " expects ", target.scalar_type());
    target.copy_(t);  // f16 -> f32 where the file holds halves
    file.tensors.erase(it);
  }
  if (!file.tensors.empty())
    fail(where, ": tensor \"", file.tensors.begin()->first, "\"",
         file.tensors.size() > 1 ? cat(" (and ", file.tensors.size() - 1, " more)") : "",
         " is not part of the ", out.spec.name, " in ", kConfigFile);

  const fs::path tokenizer_dir = dir / kTokenizerDir;
  if (fs::exists(tokenizer_dir / "tokenizer.json")) out.tokenizer = load_tokenizer(tokenizer_dir);
  return out;
}

}  // namespace retort
