// gpt: shapes, causality, KV cache, sampling, options, save/load, student initialisation,
// learning, and parity with the same model in plain PyTorch (tests/reference/gpt_reference.py).
#include "models/gpt.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/generate.h"
#include "retort/load_model.h"
#include "retort/model.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;

namespace {

// The tiny model every test uses unless it says otherwise: V 40, d 32, 2 layers, context 16.
nlohmann::json tiny_options(nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json o = {
      {"vocab_size", 40}, {"d_model", 32}, {"n_layers", 2}, {"n_heads", 4}, {"max_seq_len", 16}};
  o.update(extra);
  return o;
}

std::shared_ptr<GptImpl> tiny_gpt(nlohmann::json extra = nlohmann::json::object(),
                                  uint64_t seed = 3) {
  torch::manual_seed(seed);
  auto m = std::dynamic_pointer_cast<GptImpl>(make_model({"gpt", tiny_options(std::move(extra))}));
  m->eval();
  return m;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

// ---- the model ----------------------------------------------------------------

TEST(Gpt, LogitsHaveShapeBatchTimeVocab) {
  auto m = tiny_gpt();
  ModelOutput out = m->forward(torch::randint(0, 40, {3, 16}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 16, 40}));
  ASSERT_EQ(out.hidden.size(), 1u);
  EXPECT_EQ(out.hidden[0].sizes(), (std::vector<int64_t>{3, 16, 32}));
  EXPECT_EQ(m->options().d_ff(), 96);  // round_up(8/3 * 32, 32)
  EXPECT_EQ(m->options().n_kv_heads(), 4);
}

TEST(Gpt, ChangingTokenTChangesNoLogitBeforeT) {
  auto m = tiny_gpt();
  torch::Tensor x = torch::randint(0, 40, {2, 12});
  torch::Tensor y = x.clone();
  const int64_t t = 7;
  y.select(1, t).add_(1).remainder_(40);
  torch::Tensor a = m->forward(x).logits, b = m->forward(y).logits;
  EXPECT_EQ(max_diff(a.narrow(1, 0, t), b.narrow(1, 0, t)), 0.0);
  EXPECT_GT(max_diff(a.narrow(1, t, 12 - t), b.narrow(1, t, 12 - t)), 1e-4);
}

TEST(Gpt, ParameterCountsTiedUntiedAndGroupedQuery) {
  const int64_t V = 40, D = 32, L = 2, F = 96, hd = 8;
  auto layer = [&](int64_t kv_heads) {
    return D * (4 + 2 * kv_heads) * hd + 4 * hd * D + 3 * D * F + 2 * D;
  };
  EXPECT_EQ(count_parameters(*tiny_gpt()), V * D + L * layer(4) + D);
  EXPECT_EQ(count_parameters(*tiny_gpt({{"tie_embeddings", false}})), 2 * V * D + L * layer(4) + D);
  auto gqa = tiny_gpt({{"n_kv_heads", 2}});
  EXPECT_EQ(count_parameters(*gqa), V * D + L * layer(2) + D);
  EXPECT_LT(count_parameters(*gqa), count_parameters(*tiny_gpt()));
  EXPECT_EQ(gqa->forward(torch::randint(0, 40, {2, 9})).logits.sizes(),
            (std::vector<int64_t>{2, 9, 40}));
}

TEST(Gpt, BadOptionsNameTheValue) {
  auto error = [](nlohmann::json extra) {
    return error_of([&] { make_model({"gpt", tiny_options(extra)}); });
  };
  EXPECT_TRUE(contains(error({{"d_model", 30}}), "d_model 30 is not divisible by n_heads 4"))
      << error({{"d_model", 30}});
  EXPECT_TRUE(contains(error({{"n_kv_heads", 3}}), "n_heads 4 is not divisible by n_kv_heads 3"));
  EXPECT_TRUE(contains(error({{"d_model", 12}}), "= 3 is odd"));  // head dim 12 / 4
  EXPECT_TRUE(contains(error({{"vocab_size", 0}}), "vocab_size must be >= 1, got 0"));
  EXPECT_TRUE(contains(error({{"n_layers", -2}}), "n_layers must be >= 1, got -2"));
  EXPECT_TRUE(contains(error({{"max_seq_len", 0}}), "max_seq_len must be >= 1, got 0"));
  EXPECT_TRUE(contains(error({{"dropout", 1.5}}), "dropout must be in [0, 1), got 1.5"));
  EXPECT_TRUE(contains(error({{"rope_theta", 0}}), "rope_theta must be > 0"));
  EXPECT_TRUE(contains(error({{"tie_embeddings", "yes"}}), "'tie_embeddings' has the wrong type"));
}

TEST(Gpt, BadInputsNameTheValue) {
  auto m = tiny_gpt();
  EXPECT_TRUE(contains(error_of([&] {
                         m->forward(torch::zeros({1, 17}, torch::kInt64));
                       }),
                       "17 tokens, more than max_seq_len 16"));
  EXPECT_TRUE(contains(error_of([&] {
                         m->forward(torch::full({1, 4}, 40, torch::kInt64));
                       }),
                       "token id 40 is outside [0, 40)"));
  EXPECT_TRUE(contains(error_of([&] {
                         m->forward(torch::full({1, 4}, -1, torch::kInt64));
                       }),
                       "token id -1"));
  EXPECT_TRUE(
      contains(error_of([&] { m->forward(torch::zeros({4}, torch::kInt64)); }), "got shape [4]"));
  EXPECT_THROW(m->forward(torch::zeros({1, 4})), Error);  // float ids
  KvCache cache;
  m->forward_cached(torch::zeros({1, 10}, torch::kInt64), cache);
  EXPECT_TRUE(contains(error_of([&] {
                         m->forward_cached(torch::zeros({1, 7}, torch::kInt64), cache);
                       }),
                       "10 cached + 7 new tokens exceed max_seq_len 16"));
}

TEST(Gpt, ForwardCachedEqualsFullForwardWithin1e5) {
  for (int64_t kv_heads : {4, 2, 1}) {
    auto m = tiny_gpt({{"n_kv_heads", kv_heads}});
    torch::NoGradGuard no_grad;
    torch::Tensor x = torch::randint(0, 40, {2, 16});
    torch::Tensor full = m->forward(x).logits;
    KvCache cache;
    std::vector<torch::Tensor> parts = {m->forward_cached(x.narrow(1, 0, 5), cache)};  // prefill 5
    for (int64_t t = 5; t < 12; ++t) parts.push_back(m->forward_cached(x.narrow(1, t, 1), cache));
    parts.push_back(m->forward_cached(x.narrow(1, 12, 4), cache));  // a chunk of 4
    EXPECT_EQ(cache.length, 16);
    EXPECT_LT(max_diff(torch::cat(parts, 1), full), 1e-5) << "n_kv_heads " << kv_heads;
  }
}

TEST(Gpt, SaveLoadRoundTripGivesIdenticalLogits) {
  TempDir tmp;
  ModelSpec spec{
      "gpt", tiny_options({{"n_kv_heads", 2}, {"tie_embeddings", false}, {"rope_theta", 100.0}})};
  ModelPtr m = make_model(spec);
  m->eval();
  save_model(*m, spec, tmp / "model");
  LoadedModel back = load_model(tmp / "model");
  back.model->eval();
  torch::Tensor x = torch::randint(0, 40, {2, 16});
  EXPECT_TRUE(m->forward(x).logits.equal(back.model->forward(x).logits));
}

TEST(Gpt, AdamWOnARepeatedSequenceDrivesTheLossDown) {
  auto m = tiny_gpt();
  m->train();
  torch::Tensor pattern = torch::tensor({3, 14, 15, 9, 26, 5, 35, 8}, torch::kInt64);
  torch::Tensor seq = pattern.repeat({3}).narrow(0, 0, 17).unsqueeze(0).repeat({4, 1});  // (4, 17)
  torch::Tensor x = seq.narrow(1, 0, 16), y = seq.narrow(1, 1, 16);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  auto loss_now = [&] {
    return torch::cross_entropy_loss(m->forward(x).logits.reshape({-1, 40}), y.reshape({-1}));
  };
  double first = loss_now().item<double>();
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    torch::Tensor loss = loss_now();
    loss.backward();
    opt.step();
  }
  double last = loss_now().item<double>();
  EXPECT_NEAR(first, std::log(40.0), 0.3);  // a fresh model is close to uniform
  EXPECT_LT(last, 0.5) << "first " << first;
}

// ---- generation ---------------------------------------------------------------

TEST(Generate, KvCacheGivesTheSameTokensAsFullRecompute) {
  auto m = tiny_gpt({{"n_kv_heads", 2}});
  torch::Tensor prompts = torch::randint(0, 40, {3, 4});
  for (double temperature : {0.0, 1.0}) {
    SamplingOptions o;
    o.temperature = temperature;
    o.seed = 11;
    // 30 new tokens: the 16-token context fills up, so the window slides too
    torch::Tensor with = generate(*m, prompts, 30, o);
    o.use_cache = false;
    torch::Tensor without = generate(*m, prompts, 30, o);
    EXPECT_EQ(with.sizes(), (std::vector<int64_t>{3, 34}));
    EXPECT_TRUE(with.equal(without)) << "temperature " << temperature << "\n"
                                     << with << "\n"
                                     << without;
    EXPECT_TRUE(with.narrow(1, 0, 4).equal(prompts));
  }
}

TEST(Generate, SameSeedSameTokensDifferentSeedDifferentTokens) {
  auto m = tiny_gpt();
  torch::Tensor prompts = torch::randint(0, 40, {2, 3});
  SamplingOptions o;
  o.seed = 5;
  torch::Tensor a = generate(*m, prompts, 12, o), b = generate(*m, prompts, 12, o);
  o.seed = 6;
  torch::Tensor c = generate(*m, prompts, 12, o);
  EXPECT_TRUE(a.equal(b));
  EXPECT_FALSE(a.equal(c));
}

TEST(Generate, TopK1AndTinyTopPEqualGreedy) {
  auto m = tiny_gpt();
  torch::Tensor prompts = torch::randint(0, 40, {2, 3});
  SamplingOptions greedy;
  greedy.temperature = 0;
  torch::Tensor expected = generate(*m, prompts, 10, greedy);
  SamplingOptions k1;
  k1.top_k = 1;
  k1.seed = 99;
  EXPECT_TRUE(generate(*m, prompts, 10, k1).equal(expected));
  SamplingOptions p;
  p.top_p = 1e-6;
  p.seed = 98;
  EXPECT_TRUE(generate(*m, prompts, 10, p).equal(expected));
}

TEST(Generate, LeavesTheGlobalRngAndTheTrainingModeAlone) {
  auto m = tiny_gpt();
  m->train();
  torch::manual_seed(42);
  torch::Tensor expected = torch::rand({4});
  torch::manual_seed(42);
  generate(*m, torch::ones({1, 2}, torch::kInt64), 5, SamplingOptions{});
  EXPECT_TRUE(torch::rand({4}).equal(expected));
  EXPECT_TRUE(m->is_training());
}

TEST(Generate, WorksForAnyModelMappingIdsToLogits) {
  // A model without a cache: a bigram table. Greedy from token a always continues with a + 1.
  struct Bigram : ModelImpl {
    ModelOutput forward(const torch::Tensor& x) override {
      return {torch::one_hot((x + 1).remainder(10), 10).to(torch::kFloat32) * 10, {}};
    }
  } bigram;
  SamplingOptions o;
  o.temperature = 0;
  torch::Tensor out = generate(bigram, torch::tensor({{7}}, torch::kInt64), 4, o);
  EXPECT_TRUE(out.equal(torch::tensor({{7, 8, 9, 0, 1}}, torch::kInt64))) << out;
}

TEST(Generate, BadArgumentsNameTheValue) {
  auto m = tiny_gpt();
  torch::Tensor p = torch::zeros({1, 2}, torch::kInt64);
  SamplingOptions o;
  o.top_p = 0;
  EXPECT_TRUE(contains(error_of([&] { generate(*m, p, 3, o); }), "top_p must be in (0, 1], got 0"));
  o = {};
  o.temperature = -1;
  EXPECT_TRUE(contains(error_of([&] { generate(*m, p, 3, o); }), "temperature must be >= 0"));
  EXPECT_TRUE(contains(error_of([&] { generate(*m, p, -1, SamplingOptions{}); }),
                       "max_new_tokens must be >= 0, got -1"));
  EXPECT_TRUE(contains(
      error_of([&] { generate(*m, torch::zeros({2}, torch::kInt64), 3, SamplingOptions{}); }),
      "got shape [2]"));
}

// ---- student initialisation ---------------------------------------------------

TEST(Gpt, InitStudentFromTeacherCopiesEveryOtherLayer) {
  auto teacher = tiny_gpt({{"n_layers", 4}, {"tie_embeddings", false}}, /*seed=*/1);
  auto student = tiny_gpt({{"n_layers", 2}}, /*seed=*/2);
  EXPECT_EQ(init_student_from_teacher(*student, *teacher), "layers 0,2 of 4");
  EXPECT_TRUE(student->tok_emb->weight.equal(teacher->tok_emb->weight));
  EXPECT_TRUE(student->norm->weight.equal(teacher->norm->weight));
  for (int64_t i = 0; i < 2; ++i) {
    auto s = student->blocks[i]->named_parameters();
    auto t = teacher->blocks[2 * i]->named_parameters();
    ASSERT_EQ(s.size(), 7u);
    for (const auto& p : s)
      EXPECT_TRUE(p.value().equal(t[p.key()])) << "layer " << i << " " << p.key();
  }
  // an untied student takes the untied teacher's head
  auto untied = tiny_gpt({{"n_layers", 3}, {"tie_embeddings", false}}, /*seed=*/4);
  EXPECT_EQ(init_student_from_teacher(*untied, *teacher), "layers 0,1,2 of 4");
  EXPECT_TRUE(untied->head->weight.equal(teacher->head->weight));
  EXPECT_TRUE(untied->blocks[2]->named_parameters()["attn.qkv.weight"].equal(
      teacher->blocks[2]->named_parameters()["attn.qkv.weight"]));
}

// Teacher d 32 (4 heads of 8, d_ff 96), student d 16 (4 heads of 4, d_ff 64), 2 of 4 layers: every
// student matrix must be the teacher's matrix at the indices written out here.
TEST(Gpt, InitStudentFromTeacherSelectsEvenlySpacedDimsOfANarrowerTeacher) {
  auto teacher = tiny_gpt({{"n_layers", 4}}, /*seed=*/1);
  auto student = tiny_gpt({{"d_model", 16}}, /*seed=*/2);
  ASSERT_EQ(teacher->options().d_ff(), 96);
  ASSERT_EQ(student->options().d_ff(), 64);
  EXPECT_EQ(init_student_from_teacher(*student, *teacher),
            "layers 0,2 of 4; d_model 16 of 32, heads 4 of 4 (head dim 4 of 8), d_ff 64 of 96");
  auto idx = [](std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64); };
  std::vector<int64_t> d, ff, qkv, vcols;
  for (int64_t i = 0; i < 16; ++i) d.push_back(2 * i);
  for (int64_t i = 0; i < 64; ++i) ff.push_back(i * 3 / 2);
  // q heads at rows 0, 8, 16, 24; k at 32 + 8g; v at 64 + 8g. RoPE pairs dim e with e + 4 at
  // frequency e: student frequencies 0, 1 come from teacher frequencies 0, 2 -> dims 0, 2, 4, 6.
  for (int64_t base : {0, 32, 64})
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t e : {0, 2, 4, 6}) qkv.push_back(base + 8 * h + e);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t e : {0, 2, 4, 6}) vcols.push_back(8 * h + e);
  auto sel = [](const torch::Tensor& w, const torch::Tensor& rows, const torch::Tensor& cols) {
    torch::Tensor out = rows.defined() ? w.index_select(0, rows) : w;
    return cols.defined() ? out.index_select(1, cols) : out;
  };
  const torch::Tensor D = idx(d), FF = idx(ff), QKV = idx(qkv), V = idx(vcols), all;
  EXPECT_TRUE(student->tok_emb->weight.equal(sel(teacher->tok_emb->weight, all, D)));
  EXPECT_TRUE(student->norm->weight.equal(sel(teacher->norm->weight, D, all)));
  for (int64_t i = 0; i < 2; ++i) {
    auto s = student->blocks[i]->named_parameters();
    auto t = teacher->blocks[2 * i]->named_parameters();
    ASSERT_EQ(s.size(), 7u);
    auto expect = [&](const char* name, const torch::Tensor& want) {
      EXPECT_TRUE(s[name].equal(want)) << "layer " << i << " " << name;
    };
    expect("attn_norm.weight", sel(t["attn_norm.weight"], D, all));
    expect("mlp_norm.weight", sel(t["mlp_norm.weight"], D, all));
    expect("attn.qkv.weight", sel(t["attn.qkv.weight"], QKV, D));
    expect("attn.proj.weight", sel(t["attn.proj.weight"], D, V));
    expect("mlp.w1.weight", sel(t["mlp.w1.weight"], FF, D));
    expect("mlp.w3.weight", sel(t["mlp.w3.weight"], FF, D));
    expect("mlp.w2.weight", sel(t["mlp.w2.weight"], D, FF));
  }
  // Fewer heads of the same size: the first two heads whole (q rows 0..15, k 32..47, v 64..79).
  auto two_heads = tiny_gpt({{"d_model", 16}, {"n_heads", 2}, {"n_layers", 4}}, /*seed=*/5);
  EXPECT_EQ(init_student_from_teacher(*two_heads, *teacher),
            "layers 0,1,2,3 of 4; d_model 16 of 32, heads 2 of 4 (head dim 8 of 8), d_ff 64 of 96");
  std::vector<int64_t> first;
  for (int64_t base : {0, 32, 64})
    for (int64_t e = 0; e < 16; ++e) first.push_back(base + e);
  EXPECT_TRUE(two_heads->blocks[3]->named_parameters()["attn.qkv.weight"].equal(
      sel(teacher->blocks[3]->named_parameters()["attn.qkv.weight"], idx(first), D)));
  std::vector<int64_t> first_cols(16);
  for (int64_t e = 0; e < 16; ++e) first_cols[e] = e;
  EXPECT_TRUE(two_heads->blocks[3]->named_parameters()["attn.proj.weight"].equal(
      sel(teacher->blocks[3]->named_parameters()["attn.proj.weight"], D, idx(first_cols))));
  // The selected student runs.
  torch::Tensor x = torch::randint(0, 40, {2, 8}, torch::kInt64);
  EXPECT_TRUE(torch::isfinite(student->forward(x).logits).all().item<bool>());
}

TEST(Gpt, InitStudentFromTeacherRefusesIncompatibleShapesNamingBoth) {
  auto teacher = tiny_gpt({{"n_layers", 4}});
  std::string wider = error_of([&] { init_student_from_teacher(*tiny_gpt({{"d_model", 64}}), *teacher); });
  EXPECT_TRUE(contains(wider, "student d_model is 64, teacher d_model is 32")) << wider;
  EXPECT_TRUE(contains(wider, "student gpt(vocab 40, d_model 64, layers 2, heads 4, kv_heads 4, d_ff 192)")) << wider;
  EXPECT_TRUE(contains(wider, "teacher gpt(vocab 40, d_model 32, layers 4, heads 4, kv_heads 4, d_ff 96)")) << wider;
  EXPECT_TRUE(contains(error_of([&] { init_student_from_teacher(*tiny_gpt({{"n_layers", 5}}), *teacher); }),
                       "student n_layers is 5, teacher n_layers is 4"));
  EXPECT_TRUE(contains(error_of([&] { init_student_from_teacher(*tiny_gpt({{"n_kv_heads", 2}}), *teacher); }),
                       "student n_heads / n_kv_heads is 2, teacher n_heads / n_kv_heads is 1"));
  std::string vocab = error_of([&] { init_student_from_teacher(*tiny_gpt({{"vocab_size", 41}}), *teacher); });
  EXPECT_TRUE(contains(vocab, "student vocab_size is 41, teacher vocab_size is 40")) << vocab;
  EXPECT_TRUE(contains(vocab, "(student gpt(vocab 41")) << vocab;
  ModelPtr mlp = make_model({"mlp", {{"hidden", {4}}}});
  EXPECT_TRUE(
      contains(error_of([&] { init_student_from_teacher(*mlp, *teacher); }), "the student is not"));
}

// ---- parity with PyTorch (numbers made by tests/reference/gpt_reference.py) ----------

namespace {

torch::Tensor tensor_of(const nlohmann::json& t) {
  std::vector<float> data = t["data"].get<std::vector<float>>();
  return torch::tensor(data, torch::kFloat32).reshape(t["shape"].get<std::vector<int64_t>>());
}

}  // namespace

TEST(GptParity, LogitsMatchPyTorch) {
  const char* dir = std::getenv("RETORT_REFERENCE_DIR");
  ASSERT_NE(dir, nullptr) << "RETORT_REFERENCE_DIR is not set (ctest sets it)";
  auto ref = nlohmann::json::parse(read_text(std::filesystem::path(dir) / "gpt_reference.json"));
  ASSERT_EQ(ref["cases"].size(), 2u);
  for (const auto& c : ref["cases"]) {
    ModelPtr m = make_model({"gpt", c["options"]});
    m->eval();
    auto params = m->named_parameters();
    ASSERT_EQ(params.size(), c["params"].size()) << c["options"].dump();
    {
      torch::NoGradGuard no_grad;
      for (const auto& [name, t] : c["params"].items()) {
        ASSERT_TRUE(params.contains(name)) << "PyTorch has " << name << ", retort does not";
        torch::Tensor value = tensor_of(t);
        ASSERT_EQ(params[name].sizes(), value.sizes()) << name;
        params[name].copy_(value);
      }
    }
    std::vector<int64_t> ids;
    for (const auto& row : c["ids"])
      for (const auto& id : row) ids.push_back(id.get<int64_t>());
    torch::Tensor x =
        torch::tensor(ids, torch::kInt64).reshape({(int64_t)c["ids"].size(), -1});  // (B, T)
    torch::Tensor expected = tensor_of(c["logits"]);
    torch::Tensor got = m->forward(x).logits;
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_LT(max_diff(got, expected), 1e-4) << c["options"].dump();
    // and through the KV cache, token by token
    auto* gpt = dynamic_cast<GptImpl*>(m.get());
    KvCache cache;
    std::vector<torch::Tensor> steps;
    torch::NoGradGuard no_grad;
    for (int64_t t = 0; t < x.size(1); ++t)
      steps.push_back(gpt->forward_cached(x.narrow(1, t, 1), cache));
    EXPECT_LT(max_diff(torch::cat(steps, 1), expected), 1e-4) << "cached " << c["options"].dump();
  }
}
