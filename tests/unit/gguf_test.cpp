// GGUF files: exact round trips of gpt (tied, untied, grouped-query) in f32, f16 within float16
// rounding, the llama names and hyperparameters, the q/k row order that llama.cpp's interleaved
// RoPE needs (checked numerically against retort's rotate_half RoPE), and refusal of broken or
// foreign files with one line naming the file. tests/clients/gguf_llama_test.mjs runs the files
// in llama.cpp itself.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/gguf_io.h"
#include "models/gpt.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/load_model.h"
#include "retort/model.h"
#include "retort/text.h"
#include "retort/tokenizer.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;
using retort::testing::tiny_gpt;
using json = nlohmann::json;

namespace {

GptImpl& gpt(const LoadedModel& m) { return dynamic_cast<GptImpl&>(*m.model); }

torch::Tensor logits_of(ModelImpl& m) {
  torch::manual_seed(7);
  m.eval();
  torch::NoGradGuard no_grad;
  return m.forward(torch::randint(0, 40, {2, 11})).logits;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

ExportOptions f16() {
  ExportOptions o;
  o.dtype = "f16";
  return o;
}

void expect_same_parameters(const LoadedModel& a, const LoadedModel& b) {
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

// RoPE on x (T, hd) at positions 0..T-1, angle of pair i = pos * theta^(-2i / hd).
// rotate_half pairs (i, i + hd/2), as retort and Hugging Face do; interleaved pairs
// (2i, 2i + 1), as llama.cpp does for architecture llama.
torch::Tensor rope(const torch::Tensor& x, double theta, bool interleaved) {
  const int64_t T = x.size(0), hd = x.size(1);
  torch::Tensor inv = torch::pow(theta, -torch::arange(0, hd, 2, torch::kFloat64) / hd);  // (hd/2)
  torch::Tensor angle = torch::outer(torch::arange(T, torch::kFloat64), inv);  // (T, hd/2)
  torch::Tensor cos = angle.cos(), sin = angle.sin();
  torch::Tensor a, b;  // the two members of each pair: (T, hd/2)
  if (interleaved) {
    torch::Tensor pairs = x.view({T, hd / 2, 2});
    a = pairs.select(2, 0);
    b = pairs.select(2, 1);
    return torch::stack({a * cos - b * sin, a * sin + b * cos}, 2).view({T, hd});
  }
  a = x.narrow(1, 0, hd / 2);
  b = x.narrow(1, hd / 2, hd / 2);
  return torch::cat({a * cos - b * sin, a * sin + b * cos}, 1);
}

// Rewrites file p with `edit` applied to its bytes.
void edit_file(const fs::path& p, const std::function<void(std::string&)>& edit) {
  std::string bytes = read_text(p);
  edit(bytes);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

// ---- round trips ---------------------------------------------------------------------------

TEST(Gguf, F32RoundTripIsExactForTiedUntiedAndGroupedQuery) {
  TempDir tmp;
  for (json extra : {json::object(), json{{"tie_embeddings", false}},
                     json{{"n_kv_heads", 2}, {"tie_embeddings", false}}, json{{"n_kv_heads", 1}}}) {
    SCOPED_TRACE(extra.dump());
    LoadedModel m = tiny_gpt(extra);
    fs::path file = tmp / "m.gguf";
    ExportResult r = export_gguf(m, file, {});
    EXPECT_EQ(r.files, std::vector<fs::path>{file});
    EXPECT_EQ(r.bytes, static_cast<int64_t>(fs::file_size(file)));
    EXPECT_TRUE(contains(r.summary, file.string()) && contains(r.summary, "f32")) << r.summary;
    EXPECT_TRUE(is_gguf_file(file));

    LoadedModel back = load_model(file);  // the registry sends .gguf files to import_gguf
    EXPECT_EQ(back.dir, file);
    EXPECT_EQ(back.spec.name, "gpt");
    EXPECT_EQ(back.spec.options, m.spec.options);
    expect_same_parameters(m, back);
    EXPECT_EQ(max_diff(logits_of(*m.model), logits_of(*back.model)), 0.0);
    ASSERT_TRUE(back.tokenizer);
    EXPECT_EQ(back.tokenizer->fingerprint(), m.tokenizer->fingerprint());
  }
  EXPECT_FALSE(fs::exists(tmp / "m.gguf.tmp"));
}

TEST(Gguf, F16RoundTripGivesTheHalvedMatricesAndExactNorms) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"n_kv_heads", 2}, {"tie_embeddings", false}});
  export_gguf(m, tmp / "f32.gguf", {});
  ExportResult r = export_gguf(m, tmp / "f16.gguf", f16());
  EXPECT_TRUE(contains(r.summary, "f16")) << r.summary;
  EXPECT_LT(fs::file_size(tmp / "f16.gguf"), fs::file_size(tmp / "f32.gguf") * 6 / 10);

  LoadedModel back = import_gguf(tmp / "f16.gguf");
  const double before = max_diff(logits_of(*m.model), logits_of(*back.model));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m.model->parameters())
      if (p.dim() == 2) p.copy_(p.to(torch::kFloat16).to(torch::kFloat32));
  }
  expect_same_parameters(m, back);  // matrices rounded to float16 once, norms untouched
  const double after = max_diff(logits_of(*m.model), logits_of(*back.model));
  EXPECT_EQ(after, 0.0);
  EXPECT_GT(before, 0.0);
  EXPECT_LT(before, 0.5) << "logits of the f16 file drift more than float16 rounding explains";
}

TEST(Gguf, SentencePieceTokenizerTravelsInsideTheFile) {
  TempDir tmp;
  const std::string corpus = load_text_corpus("kjv").documents[0];
  for (std::string type : {"bpe", "unigram"}) {
    SCOPED_TRACE(type);
    SentencePieceOptions so;
    so.vocab_size = 300;
    so.model_type = type;
    LoadedModel m = tiny_gpt({{"vocab_size", 300}});
    m.tokenizer = train_sentencepiece(corpus, so);
    export_gguf(m, tmp / "sp.gguf", {});
    LoadedModel back = import_gguf(tmp / "sp.gguf");
    ASSERT_TRUE(back.tokenizer);
    EXPECT_EQ(back.tokenizer->describe(), m.tokenizer->describe());
    EXPECT_EQ(back.tokenizer->fingerprint(), m.tokenizer->fingerprint());
    const std::string text = "In the beginning God created\nthe heaven and the earth.";
    EXPECT_EQ(back.tokenizer->encode(text), m.tokenizer->encode(text));
    // llama.cpp's tokenizer for each: "llama" merges by score (BPE), "t5" is its unigram
    EXPECT_EQ(gguf::Reader(tmp / "sp.gguf").string("tokenizer.ggml.model"),
              type == "bpe" ? "llama" : "t5");
  }
}

// ---- what llama.cpp reads ------------------------------------------------------------------

TEST(Gguf, FileHoldsLlamaHyperparametersAndTensorNames) {
  TempDir tmp;
  LoadedModel m = tiny_gpt(
      {{"n_kv_heads", 2}, {"tie_embeddings", false}, {"rope_theta", 500.0}, {"norm_eps", 1e-6}});
  export_gguf(m, tmp / "m.gguf", f16());
  gguf::Reader f(tmp / "m.gguf");
  EXPECT_EQ(f.string("general.architecture"), "llama");
  EXPECT_EQ(f.u32("general.file_type"), 1u);
  EXPECT_EQ(f.u32("llama.context_length"), 16u);
  EXPECT_EQ(f.u32("llama.embedding_length"), 32u);
  EXPECT_EQ(f.u32("llama.block_count"), 2u);
  EXPECT_EQ(f.u32("llama.feed_forward_length"), 96u);
  EXPECT_EQ(f.u32("llama.attention.head_count"), 4u);
  EXPECT_EQ(f.u32("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(f.u32("llama.rope.dimension_count"), 8u);
  EXPECT_EQ(f.u32("llama.vocab_size"), 40u);
  EXPECT_EQ(f.f32("llama.rope.freq_base"), 500.0f);
  EXPECT_EQ(f.f32("llama.attention.layer_norm_rms_epsilon"), 1e-6f);
  EXPECT_EQ(f.string("tokenizer.ggml.model"), "llama");

  // GGUF lists dims innermost first: a (out, in) matrix is [in, out].
  using Dims = std::vector<int64_t>;
  const std::map<std::string, Dims> expected = {
      {"token_embd.weight", {32, 40}},   {"output_norm.weight", {32}},
      {"output.weight", {32, 40}},       {"blk.1.attn_norm.weight", {32}},
      {"blk.1.attn_q.weight", {32, 32}}, {"blk.1.attn_k.weight", {32, 16}},
      {"blk.1.attn_v.weight", {32, 16}}, {"blk.1.attn_output.weight", {32, 32}},
      {"blk.1.ffn_norm.weight", {32}},   {"blk.1.ffn_gate.weight", {32, 96}},
      {"blk.1.ffn_up.weight", {32, 96}}, {"blk.1.ffn_down.weight", {96, 32}}};
  EXPECT_EQ(f.tensors().size(), 3 + 2 * 9u);
  for (const auto& [name, dims] : expected) {
    ASSERT_TRUE(f.tensors().count(name)) << name;
    const gguf::TensorInfo& info = f.tensors().at(name);
    EXPECT_EQ(info.dims, dims) << name;
    EXPECT_EQ(info.type, dims.size() == 1 ? 0u : 1u) << name << ": norms F32, matrices F16";
  }
  // v, the MLP and the head keep retort's rows; only q and k are reordered.
  auto& g = gpt(m);
  EXPECT_TRUE(
      torch::equal(f.tensor("blk.1.attn_v.weight"), g.blocks->ptr<GptBlockImpl>(1)
                                                        ->attn->qkv->weight.narrow(0, 48, 16)
                                                        .to(torch::kFloat16)
                                                        .to(torch::kFloat32)));

  export_gguf(tiny_gpt(), tmp / "tied.gguf", {});
  gguf::Reader tied(tmp / "tied.gguf");
  EXPECT_EQ(tied.tensors().count("output.weight"), 0u) << "tied: llama.cpp reuses token_embd";
  EXPECT_EQ(tied.u32("general.file_type"), 0u);
}

TEST(Gguf, InterleavedRopeOnExportedQkEqualsRotateHalfRopeOnRetorts) {
  TempDir tmp;
  const double theta = 10000;
  LoadedModel m = tiny_gpt({{"n_kv_heads", 2}});
  export_gguf(m, tmp / "m.gguf", {});
  gguf::Reader f(tmp / "m.gguf");
  const int64_t hd = 8, T = 6;
  torch::Tensor qkv =
      gpt(m).blocks->ptr<GptBlockImpl>(0)->attn->qkv->weight.to(torch::kFloat64);  // (4+2+2)*8 rows
  torch::Tensor q_file = f.tensor("blk.0.attn_q.weight").to(torch::kFloat64);
  torch::Tensor k_file = f.tensor("blk.0.attn_k.weight").to(torch::kFloat64);
  torch::manual_seed(11);
  torch::Tensor x = torch::randn({T, 32}, torch::kFloat64);
  // query head 3 and kv head 1 (its group): the last head of each, so the per-head reordering shows
  torch::Tensor q_retort = rope(x.matmul(qkv.narrow(0, 3 * hd, hd).t()), theta, false);
  torch::Tensor k_retort = rope(x.matmul(qkv.narrow(0, (4 + 1) * hd, hd).t()), theta, false);
  torch::Tensor q_llama = rope(x.matmul(q_file.narrow(0, 3 * hd, hd).t()), theta, true);
  torch::Tensor k_llama = rope(x.matmul(k_file.narrow(0, 1 * hd, hd).t()), theta, true);
  // Attention scores are what the model uses: equal to rounding.
  torch::Tensor scores_retort = q_retort.matmul(k_retort.t()),
                scores_llama = q_llama.matmul(k_llama.t());
  EXPECT_LT(max_diff(scores_retort, scores_llama), 1e-9 * scores_retort.abs().max().item<double>());
  // And element by element: llama's dimension 2i + j is retort's j * hd/2 + i.
  torch::Tensor order = torch::arange(hd).view({2, hd / 2}).t().reshape({hd});
  EXPECT_LT(max_diff(q_llama, q_retort.index_select(1, order)), 1e-9);
  EXPECT_LT(max_diff(k_llama, k_retort.index_select(1, order)), 1e-9);
  // Without the reordering the scores would differ: the test can tell.
  torch::Tensor q_unpermuted = rope(x.matmul(qkv.narrow(0, 3 * hd, hd).t()), theta, true);
  torch::Tensor k_unpermuted = rope(x.matmul(qkv.narrow(0, 5 * hd, hd).t()), theta, true);
  EXPECT_GT(max_diff(scores_retort, q_unpermuted.matmul(k_unpermuted.t())), 1e-3);
}

// ---- refusals ------------------------------------------------------------------------------

TEST(Gguf, BrokenFilesAreRefusedWithOneLineNamingTheFile) {
  TempDir tmp;
  const fs::path good = tmp / "good.gguf";
  export_gguf(tiny_gpt({{"tie_embeddings", false}}), good, {});
  const std::string bytes = read_text(good);
  auto refused = [&](const std::string& name, const std::function<void(std::string&)>& edit) {
    fs::path p = tmp / name;
    fs::copy_file(good, p, fs::copy_options::overwrite_existing);
    edit_file(p, edit);
    std::string msg = error_of([&] { import_gguf(p); });
    EXPECT_TRUE(contains(msg, p.string())) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  };
  std::string msg = refused("magic.gguf", [](std::string& b) { b[3] = 'X'; });
  EXPECT_TRUE(contains(msg, "not a GGUF file")) << msg;
  EXPECT_FALSE(is_gguf_file(tmp / "magic.gguf"));

  msg = refused("version.gguf", [](std::string& b) { b[4] = 2; });
  EXPECT_TRUE(contains(msg, "version 2 is not supported")) << msg;

  for (size_t cut : {size_t{2}, size_t{20}, size_t{300}, bytes.size() / 2, bytes.size() - 100}) {
    msg = refused("cut.gguf", [&](std::string& b) { b.resize(cut); });
    EXPECT_TRUE(contains(msg, "truncated")) << "cut at " << cut << ": " << msg;
  }

  const std::string name = "blk.1.ffn_up.weight";
  msg = refused("renamed.gguf", [&](std::string& b) { b[b.find(name) + name.size() - 1] = 'X'; });
  EXPECT_TRUE(contains(msg, "tensor " + name + " is missing")) << msg;

  // A GGUF that retort did not write (a llama.cpp model, say) is named as such.
  fs::path foreign = tmp / "foreign.gguf";
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_tensor("token_embd.weight", torch::zeros({4, 2}), gguf::TensorType::f32);
  {
    std::ofstream out(foreign, std::ios::binary);
    w.write(out);
  }
  EXPECT_TRUE(is_gguf_file(foreign));
  msg = error_of([&] { load_model(foreign); });
  EXPECT_TRUE(contains(msg, foreign.string()) && contains(msg, "not written by `retort export`"))
      << msg;

  msg = error_of([&] { import_gguf(tmp / "absent.gguf"); });
  EXPECT_TRUE(contains(msg, (tmp / "absent.gguf").string()) && contains(msg, "does not exist"))
      << msg;
}

TEST(Gguf, ExportRefusesClassifiersAndWeightsBeyondFloat16) {
  TempDir tmp;
  LoadedModel mlp;
  mlp.spec = {"mlp", {{"hidden", {8}}}};
  mlp.model = make_model(mlp.spec);
  mlp.dir = "runs/x/model";
  std::string msg = error_of([&] { export_gguf(mlp, tmp / "mlp.gguf", {}); });
  EXPECT_TRUE(contains(msg, "gpt") && contains(msg, "mlp")) << msg;

  LoadedModel m = tiny_gpt();
  {
    torch::NoGradGuard no_grad;
    gpt(m).blocks->ptr<GptBlockImpl>(0)->mlp->w2->weight[1][2].fill_(1e6);
  }
  msg = error_of([&] { export_gguf(m, tmp / "big.gguf", f16()); });
  EXPECT_TRUE(contains(msg, "blk.0.ffn_down.weight") && contains(msg, "f32")) << msg;
  EXPECT_FALSE(fs::exists(tmp / "big.gguf"));
  export_gguf(m, tmp / "big.gguf", {});  // f32 holds it
  EXPECT_TRUE(
      torch::equal(gpt(import_gguf(tmp / "big.gguf")).blocks->ptr<GptBlockImpl>(0)->mlp->w2->weight,
                   gpt(m).blocks->ptr<GptBlockImpl>(0)->mlp->w2->weight));
}
