// gpt students as GGUF files of llama.cpp's architecture `llama`, and those files read back.
// The container is gguf_io.cpp, the vocabulary gguf_vocab.cpp; this file maps retort's gpt
// onto llama's tensor names and hyperparameters. retort's own model spec and tokenizer ride
// along in retort.* keys, so that reading a file back is exact and needs nothing but the file.
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "gguf_io.h"
#include "gguf_vocab.h"
#include "formats/spec_bounds.h"
#include "models/gpt.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/json_depth.h"
#include "retort/tokenizer.h"

namespace retort {

namespace {

using json = nlohmann::json;

// retort's own keys: the ModelSpec ({"name", "options"}) as JSON, tokenizer.json verbatim, and
// the bytes of tokenizer.model (SentencePiece only).
constexpr const char* kSpecKey = "retort.model_spec";
constexpr const char* kTokenizerJsonKey = "retort.tokenizer.json";
constexpr const char* kTokenizerModelKey = "retort.tokenizer.model";
// The digest (retort/hash.h) of what retort reads back: the tensor data, then the three keys above.
constexpr const char* kDigestKey = "retort.digest";

std::string gguf_digest(Hasher h, const std::string& spec, const std::string& tokenizer_json,
                        const std::string& tokenizer_model) {
  return digest_text(h.update(spec).update(tokenizer_json).update(tokenizer_model));
}

// RoPE rotates pairs of a head's dimensions. retort (like Hugging Face) pairs i with i + hd/2
// (rotate_half); llama.cpp's `llama` pairs 2i with 2i + 1. Reordering the rows of the q and k
// projections per head makes one equal the other: row j * hd/2 + i goes to row 2i + j.
// w: (n_head * hd, d_model)
torch::Tensor halves_to_interleaved(const torch::Tensor& w, int64_t n_head) {
  const int64_t hd = w.size(0) / n_head;
  return w.reshape({n_head, 2, hd / 2, w.size(1)}).transpose(1, 2).reshape(w.sizes());
}
torch::Tensor interleaved_to_halves(const torch::Tensor& w, int64_t n_head) {
  const int64_t hd = w.size(0) / n_head;
  return w.reshape({n_head, hd / 2, 2, w.size(1)}).transpose(1, 2).reshape(w.sizes());
}

// The name a model goes by in general.name: its folder, or the run's when that is "model".
std::string model_name(const fs::path& dir, const fs::path& file) {
  fs::path d = dir.lexically_normal();
  if (d.filename().empty()) d = d.parent_path();
  if (d.filename() == "model") d = d.parent_path();
  return d.filename().empty() ? file.stem().string() : d.filename().string();
}

const GptImpl& gpt_of(const LoadedModel& model) {
  const auto* gpt = dynamic_cast<const GptImpl*>(model.model.get());
  if (!gpt)
    fail("GGUF export takes gpt language models (architecture llama); ", model.dir.string(),
         " is a ", model.spec.name);
  if (!model.tokenizer)
    fail("GGUF export: the gpt at ", model.dir.string(),
         " has no tokenizer; llama.cpp needs one in the file");
  return *gpt;
}

// The gpt's weights under llama.cpp's names, for export and import alike: views into the
// model (q, k and v are row ranges of the fused qkv weight), each with the number of heads whose
// rows llama.cpp wants interleaved for its RoPE (0: stored as is).
struct LlamaCppTensor {
  std::string name;
  torch::Tensor view;
  int64_t interleaved_heads = 0;
};
std::vector<LlamaCppTensor> llama_cpp_tensors(const GptImpl& gpt) {
  const GptOptions& o = gpt.options();
  const int64_t H = o.n_heads(), G = o.n_kv_heads(), hd = gpt.head_dim();
  std::vector<LlamaCppTensor> out;
  out.push_back({"token_embd.weight", gpt.tok_emb->weight});  // (V, D)
  for (int64_t i = 0; i < o.n_layers(); ++i) {
    const auto& b = *gpt.blocks->ptr<GptBlockImpl>(i);
    const std::string p = cat("blk.", i, ".");
    // qkv rows: q (H * hd), then k (G * hd), then v (G * hd)
    auto qkv = b.attn->qkv->weight.split_with_sizes({H * hd, G * hd, G * hd}, 0);
    out.push_back({p + "attn_norm.weight", b.attn_norm->weight});
    out.push_back({p + "attn_q.weight", qkv[0], H});
    out.push_back({p + "attn_k.weight", qkv[1], G});
    out.push_back({p + "attn_v.weight", qkv[2]});
    out.push_back({p + "attn_output.weight", b.attn->proj->weight});
    out.push_back({p + "ffn_norm.weight", b.mlp_norm->weight});
    out.push_back({p + "ffn_gate.weight", b.mlp->w1->weight});
    out.push_back({p + "ffn_up.weight", b.mlp->w3->weight});
    out.push_back({p + "ffn_down.weight", b.mlp->w2->weight});
  }
  out.push_back({"output_norm.weight", gpt.norm->weight});
  if (gpt.head) out.push_back({"output.weight", gpt.head->weight});  // tied: llama.cpp reuses token_embd
  return out;
}

}  // namespace

ExportResult export_gguf(const LoadedModel& model, const fs::path& file,
                         const ExportOptions& options) {
  const GptImpl& gpt = gpt_of(model);
  if (options.dtype != "f32" && options.dtype != "f16")
    fail("GGUF export dtype must be f32 or f16, got \"", options.dtype, "\"");
  const bool f16 = options.dtype == "f16";
  const GptOptions& o = gpt.options();
  const int64_t hd = gpt.head_dim(), H = o.n_heads(), G = o.n_kv_heads();
  torch::NoGradGuard no_grad;

  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", model_name(model.dir, file));
  w.add_u32("general.file_type", f16 ? 1 : 0);  // llama_ftype: ALL_F32 | MOSTLY_F16
  w.add_u32("llama.context_length", o.max_seq_len());
  w.add_u32("llama.embedding_length", o.d_model());
  w.add_u32("llama.block_count", o.n_layers());
  w.add_u32("llama.feed_forward_length", o.d_ff());
  w.add_u32("llama.attention.head_count", H);
  w.add_u32("llama.attention.head_count_kv", G);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(o.norm_eps()));
  w.add_f32("llama.rope.freq_base", static_cast<float>(o.rope_theta()));
  w.add_u32("llama.rope.dimension_count", hd);
  w.add_u32("llama.vocab_size", o.vocab_size());
  gguf::add_llama_vocab(w, *model.tokenizer);
  TokenizerFiles tokenizer = model.tokenizer->files();
  const std::string spec = json{{"name", model.spec.name}, {"options", model.spec.options}}.dump();
  w.add_string(kSpecKey, spec);
  w.add_string(kTokenizerJsonKey, tokenizer.json);
  if (!tokenizer.model.empty()) w.add_bytes(kTokenizerModelKey, tokenizer.model);

  // Matrices in the file's dtype; norm weights stay F32 as llama.cpp's converters keep them.
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    const bool half = f16 && t.dim() == 2;
    if (half) {
      double largest = t.abs().max().item<double>();
      if (largest > 65504)  // the largest finite float16
        fail("GGUF export: tensor ", name, " holds ", largest,
             ", beyond float16's range (65504); export it as f32");
    }
    w.add_tensor(name, t, half ? gguf::TensorType::f16 : gguf::TensorType::f32);
  };
  for (const auto& t : llama_cpp_tensors(gpt))
    add(t.name, t.interleaved_heads ? halves_to_interleaved(t.view, t.interleaved_heads) : t.view);
  Hasher tensors;
  w.hash_tensors(tensors);
  w.add_string(kDigestKey, gguf_digest(tensors, spec, tokenizer.json, tokenizer.model));

  atomic_write(file, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    w.write(out);
    out.close();
    if (!out) fail("cannot write ", tmp.string());
  });
  ExportResult r;
  r.files = {file};
  r.bytes = static_cast<int64_t>(fs::file_size(file));
  r.summary =
      cat("wrote ", file.string(), " (GGUF llama, ", options.dtype, ", ", count_parameters(gpt),
          " parameters, ", model.tokenizer->describe(), ", ", r.bytes, " bytes)");
  return r;
}

bool is_gguf_file(const fs::path& path) { return gguf::has_magic(path); }

LoadedModel import_gguf(const fs::path& file) {
  gguf::Reader r(file);
  if (!r.has(kSpecKey))
    r.fail_here(cat("no ", kSpecKey,
                    " key: not written by `retort export`, and retort reads back only the "
                    "GGUF files it wrote"));
  const std::string spec_text = r.string(kSpecKey), tokenizer_json = r.string(kTokenizerJsonKey),
                    tokenizer_model = r.has(kTokenizerModelKey) ? r.bytes(kTokenizerModelKey) : "";
  Hasher tensors;
  r.hash_tensors(tensors);
  check_digest(cat("GGUF file ", file.string()), gguf_digest(tensors, spec_text, tokenizer_json, tokenizer_model),
               r.has(kDigestKey) ? r.string(kDigestKey) : "", cat("its ", kDigestKey, " key"));
  LoadedModel out;
  out.dir = file;
  if (json_nests_deeper_than(spec_text))
    r.fail_here(cat(kSpecKey, " nests more than ", kMaxJsonDepth, " levels deep"));
  try {
    json spec = json::parse(spec_text);
    out.spec = {spec.at("name").get<std::string>(), spec.at("options")};
  } catch (const json::exception& e) {
    r.fail_here(cat(kSpecKey, " is not a model spec: ", e.what()));
  }
  if (out.spec.name != "gpt")
    r.fail_here(cat(kSpecKey, " names model ", out.spec.name, ", GGUF holds gpt"));
  std::error_code ec;
  check_spec_fits(out.spec, fs::file_size(file, ec), cat("GGUF file ", file.string(), ": ", kSpecKey));
  try {
    out.model = make_model(out.spec);
  } catch (const Error& e) {
    r.fail_here(cat(kSpecKey, " describes no valid model: ", e.what()));
  }
  auto& gpt = dynamic_cast<GptImpl&>(*out.model);
  torch::NoGradGuard no_grad;
  // The file's tensor `name` into `param` (a view into the model), which gives the shape it must have.
  auto load = [&](const std::string& name, torch::Tensor param, int64_t interleaved_heads = 0) {
    torch::Tensor t = r.tensor(name);
    if (t.sizes() != param.sizes())
      r.fail_here(
          cat("tensor ", name, " has shape ", t.sizes(), ", the model spec gives ", param.sizes()));
    param.copy_(interleaved_heads ? interleaved_to_halves(t, interleaved_heads) : t);
  };
  for (const auto& t : llama_cpp_tensors(gpt)) load(t.name, t.view, t.interleaved_heads);

  TokenizerFiles tokenizer{tokenizer_json, tokenizer_model};
  out.tokenizer = tokenizer_from_files(tokenizer, cat(file.string(), " (", kTokenizerJsonKey, ")"));
  return out;
}

}  // namespace retort
