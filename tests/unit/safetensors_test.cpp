// safetensors folders: exact round trips of gpt (tied, untied, grouped-query), mlp and cnn, the
// Hugging Face Llama names and config, f16 and the tokenizer (broken files are refused in
// safetensors_refusal_test.cpp). The e2e export_safetensors_test.sh checks the folder from outside.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/safetensors_io.h"
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

LoadedModel classifier(const std::string& name, json options) {
  torch::manual_seed(6);
  LoadedModel m;
  m.spec = {name, options};
  m.model = make_model(m.spec);
  return m;
}

torch::Tensor gpt_logits(ModelImpl& m) {
  torch::manual_seed(7);
  m.eval();
  torch::NoGradGuard no_grad;
  return m.forward(torch::randint(0, 40, {2, 11})).logits;
}

torch::Tensor image_logits(ModelImpl& m) {
  torch::manual_seed(8);
  m.eval();
  torch::NoGradGuard no_grad;
  return m.forward(torch::randn({3, 1, 8, 8})).logits;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

json read_json(const fs::path& p) { return json::parse(read_text(p)); }

}  // namespace

// ---- gpt ----------------------------------------------------------------------------------

TEST(Safetensors, GptUntiedGroupedQueryRoundTripsWithEqualLogits) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"n_kv_heads", 2}, {"tie_embeddings", false}, {"rope_theta", 500.0}});
  ExportResult r = export_safetensors(m, tmp / "out", {});
  EXPECT_TRUE(is_safetensors_folder(tmp / "out"));
  LoadedModel back = import_safetensors(tmp / "out");
  EXPECT_EQ(back.spec.name, "gpt");
  EXPECT_EQ(back.spec.options, m.spec.options);
  EXPECT_EQ(back.dir, tmp / "out");
  ASSERT_TRUE(back.tokenizer);
  EXPECT_EQ(back.tokenizer->fingerprint(), m.tokenizer->fingerprint());
  EXPECT_EQ(max_diff(gpt_logits(*m.model), gpt_logits(*back.model)), 0.0);
  // load_model (what eval and generate use) finds the folder too
  EXPECT_EQ(max_diff(gpt_logits(*m.model), gpt_logits(*load_model(tmp / "out").model)), 0.0);

  int64_t bytes = 0;
  for (const auto& f : r.files) bytes += static_cast<int64_t>(fs::file_size(f));
  EXPECT_EQ(r.bytes, bytes);
  EXPECT_EQ(r.files.front(), tmp / "out" / "model.safetensors");
  EXPECT_EQ(r.files.back(), tmp / "out" / "config.json");
  EXPECT_TRUE(contains(r.summary, "model.safetensors")) << r.summary;
  EXPECT_TRUE(contains(r.summary, "21 tensors, f32"))
      << r.summary;  // embeddings, 9 per layer, norm, head
}

TEST(Safetensors, GptTensorsHaveLlamaNamesAndSplitQkvRows) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"n_kv_heads", 2}, {"tie_embeddings", false}});
  export_safetensors(m, tmp.path(), {});
  SafetensorsFile f = read_safetensors(tmp / "model.safetensors");
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.metadata.at("producer"), "retort");
  EXPECT_EQ(f.tensors.size(), 21u);

  auto& gpt = dynamic_cast<GptImpl&>(*m.model);
  auto& b = *gpt.blocks->ptr<GptBlockImpl>(1);
  const torch::Tensor& qkv = b.attn->qkv->weight;  // (4 * 8 + 2 * 2 * 8, 32)
  auto same = [&](const std::string& name, const torch::Tensor& expected) {
    ASSERT_TRUE(f.tensors.count(name)) << name;
    const torch::Tensor& t = f.tensors.at(name);
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
    ASSERT_EQ(t.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(torch::equal(t, expected)) << name;
  };
  same("model.embed_tokens.weight", gpt.tok_emb->weight);
  same("model.layers.1.input_layernorm.weight", b.attn_norm->weight);
  same("model.layers.1.self_attn.q_proj.weight", qkv.narrow(0, 0, 32));
  same("model.layers.1.self_attn.k_proj.weight", qkv.narrow(0, 32, 16));
  same("model.layers.1.self_attn.v_proj.weight", qkv.narrow(0, 48, 16));
  same("model.layers.1.self_attn.o_proj.weight", b.attn->proj->weight);
  same("model.layers.1.post_attention_layernorm.weight", b.mlp_norm->weight);
  same("model.layers.1.mlp.gate_proj.weight", b.mlp->w1->weight);
  same("model.layers.1.mlp.up_proj.weight", b.mlp->w3->weight);
  same("model.layers.1.mlp.down_proj.weight", b.mlp->w2->weight);
  same("model.norm.weight", gpt.norm->weight);
  same("lm_head.weight", gpt.head->weight);
}

TEST(Safetensors, GptConfigIsWhatLlamaForCausalLmReads) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"n_kv_heads", 1}, {"norm_eps", 1e-6}});
  export_safetensors(m, tmp.path(), {});
  json c = read_json(tmp / "config.json");
  EXPECT_EQ(c["architectures"], json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["hidden_size"], 32);
  EXPECT_EQ(c["intermediate_size"], 96);
  EXPECT_EQ(c["num_hidden_layers"], 2);
  EXPECT_EQ(c["num_attention_heads"], 4);
  EXPECT_EQ(c["num_key_value_heads"], 1);
  EXPECT_EQ(c["vocab_size"], 40);
  EXPECT_EQ(c["max_position_embeddings"], 16);
  EXPECT_EQ(c["rms_norm_eps"], 1e-6);
  EXPECT_EQ(c["rope_theta"], 10000.0);
  EXPECT_EQ(c["tie_word_embeddings"], true);
  EXPECT_EQ(c["hidden_act"], "silu");
  EXPECT_EQ(c["attention_bias"], false);
  EXPECT_EQ(c["mlp_bias"], false);
  EXPECT_EQ(c["torch_dtype"], "float32");
  EXPECT_TRUE(c["bos_token_id"].is_null() && c["eos_token_id"].is_null());
  EXPECT_EQ(c["retort"]["name"], "gpt");
  EXPECT_EQ(c["retort"]["options"], m.spec.options);
}

TEST(Safetensors, TiedGptHasNoLmHeadAndRoundTrips) {
  TempDir tmp;
  LoadedModel m = tiny_gpt();  // tie_embeddings defaults to true
  export_safetensors(m, tmp.path(), {});
  SafetensorsFile f = read_safetensors(tmp / "model.safetensors");
  EXPECT_EQ(f.tensors.count("lm_head.weight"), 0u);
  EXPECT_EQ(f.tensors.size(), 20u);
  EXPECT_EQ(max_diff(gpt_logits(*m.model), gpt_logits(*import_safetensors(tmp.path()).model)), 0.0);
}

TEST(Safetensors, F16StoresHalvesAndGivesTheLogitsOfHalvedWeights) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"n_kv_heads", 2}, {"tie_embeddings", false}});
  export_safetensors(m, tmp / "f32", {});
  ExportOptions o;
  o.dtype = "f16";
  ExportResult r = export_safetensors(m, tmp / "f16", o);
  EXPECT_TRUE(contains(r.summary, "f16")) << r.summary;
  SafetensorsFile f = read_safetensors(tmp / "f16" / "model.safetensors");
  for (const auto& [name, t] : f.tensors) EXPECT_EQ(t.scalar_type(), torch::kFloat16) << name;
  EXPECT_EQ(f.metadata.at("dtype"), "f16");
  EXPECT_EQ(read_json(tmp / "f16" / "config.json")["torch_dtype"], "float16");
  const auto f32_bytes = fs::file_size(tmp / "f32" / "model.safetensors");
  const auto f16_bytes = fs::file_size(tmp / "f16" / "model.safetensors");
  EXPECT_LT(f16_bytes, f32_bytes / 2 + 4096) << f32_bytes << " vs " << f16_bytes;

  // Exactly the original model with every weight rounded to float16 and back.
  LoadedModel back = import_safetensors(tmp / "f16");
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m.model->parameters()) p.copy_(p.to(torch::kFloat16).to(torch::kFloat32));
  }
  EXPECT_EQ(max_diff(gpt_logits(*m.model), gpt_logits(*back.model)), 0.0);
}

TEST(Safetensors, F16RefusesWeightsBeyondItsRange) {
  TempDir tmp;
  LoadedModel m = tiny_gpt();
  {
    torch::NoGradGuard no_grad;
    dynamic_cast<GptImpl&>(*m.model).norm->weight[3].fill_(1e6);
  }
  ExportOptions o;
  o.dtype = "f16";
  std::string msg = error_of([&] { export_safetensors(m, tmp.path(), o); });
  EXPECT_TRUE(contains(msg, "model.norm.weight") && contains(msg, "f32")) << msg;
}

TEST(Safetensors, SentencePieceTokenizerAlsoWrittenForLlamaTokenizer) {
  TempDir tmp;
  TextCorpus kjv = load_text_corpus("kjv");
  SentencePieceOptions so;
  so.vocab_size = 300;
  LoadedModel m = tiny_gpt({{"vocab_size", 300}});
  m.tokenizer = train_sentencepiece(kjv.documents[0], so);
  export_safetensors(m, tmp.path(), {});
  EXPECT_FALSE(fs::exists(tmp / "tokenizer.json"));  // HF's name for another format
  EXPECT_EQ(read_text(tmp / "tokenizer.model"), m.tokenizer->files().model);
  json tc = read_json(tmp / "tokenizer_config.json");
  EXPECT_EQ(tc["tokenizer_class"], "LlamaTokenizer");
  EXPECT_EQ(tc["add_bos_token"], false);
  EXPECT_EQ(tc["add_eos_token"], false);
  EXPECT_EQ(tc["legacy"], false);
  LoadedModel back = import_safetensors(tmp.path());
  ASSERT_TRUE(back.tokenizer);
  EXPECT_EQ(back.tokenizer->fingerprint(), m.tokenizer->fingerprint());

  // Exporting a byte-level model into the same folder leaves no SentencePiece file behind.
  export_safetensors(tiny_gpt(), tmp.path(), {});
  EXPECT_FALSE(fs::exists(tmp / "tokenizer.model"));
  EXPECT_FALSE(fs::exists(tmp / "tokenizer_config.json"));
  EXPECT_EQ(import_safetensors(tmp.path()).tokenizer->kind(), "byte");
}

// ---- classifiers ---------------------------------------------------------------------------

TEST(Safetensors, MlpRoundTripsUnderRetortNames) {
  TempDir tmp;
  LoadedModel m =
      classifier("mlp", {{"height", 8}, {"width", 8}, {"hidden", {16, 12}}, {"num_classes", 4}});
  ExportResult r = export_safetensors(m, tmp.path(), {});
  EXPECT_FALSE(contains(r.summary, "tokenizer")) << r.summary;
  SafetensorsFile f = read_safetensors(tmp / "model.safetensors");
  std::vector<std::string> names;
  for (const auto& [name, t] : f.tensors) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"body.0.bias", "body.0.weight", "body.2.bias",
                                             "body.2.weight", "head.bias", "head.weight"}));
  json c = read_json(tmp / "config.json");
  EXPECT_EQ(c["format"], "retort-safetensors");
  EXPECT_EQ(c["retort"]["name"], "mlp");
  LoadedModel back = import_safetensors(tmp.path());
  EXPECT_FALSE(back.tokenizer);
  EXPECT_EQ(max_diff(image_logits(*m.model), image_logits(*back.model)), 0.0);
}

TEST(Safetensors, CnnRoundTripsWithBatchNormStatistics) {
  TempDir tmp;
  LoadedModel m = classifier(
      "cnn",
      {{"height", 8}, {"width", 8}, {"channels", {4, 6}}, {"hidden", {10}}, {"num_classes", 4}});
  {
    torch::NoGradGuard no_grad;  // running statistics away from their initial 0 and 1
    m.model->train();
    m.model->forward(torch::randn({5, 1, 8, 8}) * 3 + 1);
  }
  export_safetensors(m, tmp.path(), {});
  SafetensorsFile f = read_safetensors(tmp / "model.safetensors");
  EXPECT_EQ(f.tensors.at("features.1.running_var").scalar_type(), torch::kFloat32);
  EXPECT_EQ(f.tensors.at("features.1.num_batches_tracked").scalar_type(), torch::kInt64);
  LoadedModel back = import_safetensors(tmp.path());
  EXPECT_EQ(max_diff(image_logits(*m.model), image_logits(*back.model)), 0.0);

  ExportOptions o;  // f16 keeps the integer buffer an integer
  o.dtype = "f16";
  export_safetensors(m, tmp / "f16", o);
  f = read_safetensors(tmp / "f16" / "model.safetensors");
  EXPECT_EQ(f.tensors.at("features.1.num_batches_tracked").scalar_type(), torch::kInt64);
  EXPECT_EQ(f.tensors.at("features.1.running_var").scalar_type(), torch::kFloat16);
  EXPECT_LT(max_diff(image_logits(*m.model), image_logits(*import_safetensors(tmp / "f16").model)),
            1e-2);
}
