// Writes the binary seeds of the fuzz corpora (tests/fuzz/corpus/<name>/) with retort's own
// writers: IDX, safetensors, GGUF (the container and a whole `retort export` of a tiny gpt), the
// top-k and dense logit caches, and tokenizer files (byte and a small SentencePiece). The text
// seeds (TOML, request bodies, API answers) are written by hand and kept as they are.
//   cmake --build build --target fuzz_seeds && build/tests/fuzz_seeds tests/fuzz/corpus
#include <torch/torch.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/gguf_io.h"
#include "formats/safetensors_io.h"
#include "fuzz_support.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/model.h"
#include "retort/tokenizer.h"
#include "retort/topk_cache.h"
#include "teachers/logit_cache_file.h"

namespace {

using namespace retort;
namespace fs = std::filesystem;

std::string file_bytes(const fs::path& p) { return read_text(p); }

void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  fuzz::write_file(p, bytes);
  std::printf("%s (%zu bytes)\n", p.c_str(), bytes.size());
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i)
    out += (i ? std::string(fuzz::kPartSeparator) : "") + parts[i];
  return out;
}

std::string idx(const std::vector<int32_t>& dims, uint8_t fill) {
  std::string out = {0, 0, 8, static_cast<char>(dims.size())};
  size_t count = 1;
  for (int32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((d >> s) & 0xFF);
    count *= d;
  }
  for (size_t i = 0; i < count; ++i) out += static_cast<char>(fill + i);
  return out;
}

std::string gzipped(const std::string& bytes, const fs::path& tmp) {
  gzFile g = gzopen(tmp.c_str(), "wb");
  gzwrite(g, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(g);
  return file_bytes(tmp);
}

void idx_seeds(const fs::path& out, const fs::path& tmp) {
  put(out / "images-2x3x3", idx({2, 3, 3}, 7));
  put(out / "labels-5", idx({5}, 0));
  put(out / "images-2x2x2.gz", gzipped(idx({2, 2, 2}, 200), tmp / "x.gz"));
  put(out / "bad-truncated", idx({2, 3, 3}, 7).substr(0, 20));
  put(out / "bad-type-float", std::string("\0\0\x0d\x01\0\0\0\x01\0\0\0\0", 12));
}

void safetensors_seeds(const fs::path& out, const fs::path& tmp) {
  NamedTensors tensors = {{"w", torch::arange(6, torch::kFloat32).reshape({2, 3})},
                          {"ids", torch::tensor({int64_t{3}, int64_t{-1}})},
                          {"half", torch::ones({1, 2}, torch::kFloat16)},
                          {"mask", torch::tensor({true, false, true})},
                          {"empty", torch::zeros({0, 4}, torch::kBFloat16)}};
  write_safetensors(tmp / "a.safetensors", tensors, {{"producer", "retort"}});
  const std::string whole = file_bytes(tmp / "a.safetensors");
  put(out / "five-tensors.safetensors", whole);
  put(out / "bad-truncated.safetensors", whole.substr(0, whole.size() - 3));
  // Written elsewhere: no digest in __metadata__ (loads with a warning).
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[1,3],"data_offsets":[8,11]}})";
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  put(out / "no-digest.safetensors", bytes + header + std::string(11, '\x01'));
  std::string overlap = R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})";
  const uint64_t m = overlap.size();
  std::memcpy(bytes.data(), &m, 8);
  put(out / "bad-overlap.safetensors", bytes + overlap + std::string(8, '\0'));
}

void gguf_seeds(const fs::path& out, const fs::path& tmp) {
  gguf::Writer w;
  w.add_string("general.architecture", "llama");
  w.add_u32("general.alignment", 32);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_bool("fuzz.flag", true);
  w.add_strings("tokenizer.ggml.tokens", {"a", "b", "<0x0A>"});
  w.add_f32s("tokenizer.ggml.scores", {0.f, -1.f, -2.f});
  w.add_i32s("tokenizer.ggml.token_type", {1, 1, 6});
  w.add_bytes("retort.tokenizer.model", std::string("\x01\x02\x03", 3));
  w.add_tensor("a.weight", torch::arange(6, torch::kFloat32).reshape({2, 3}), gguf::TensorType::f32);
  w.add_tensor("b.weight", torch::ones({4}), gguf::TensorType::f16);
  std::ofstream f(tmp / "c.gguf", std::ios::binary);
  w.write(f);
  f.close();
  const std::string container = file_bytes(tmp / "c.gguf");
  put(out / "container.gguf", container);
  put(out / "bad-truncated.gguf", container.substr(0, container.size() / 2));

  // What `retort export --format gguf` writes for a tiny gpt with the byte tokenizer.
  LoadedModel m;
  m.spec = {"gpt", {{"vocab_size", 256}, {"d_model", 8}, {"n_layers", 1}, {"n_heads", 2},
                    {"d_ff", 16}, {"max_seq_len", 16}}};
  torch::manual_seed(0);
  m.model = make_model(m.spec);
  m.tokenizer = make_byte_tokenizer();
  m.dir = tmp / "tiny";
  export_gguf(m, tmp / "tiny.gguf", ExportOptions{"f16"});
  put(out / "tiny-gpt-f16.gguf", file_bytes(tmp / "tiny.gguf"));
}

void topk_cache_seeds(const fs::path& out, const fs::path& tmp) {
  auto cache = [&](const std::string& name, TopkCacheInfo info) {
    const fs::path dir = tmp / name;
    TopkCacheWriter writer(dir, info);
    std::vector<std::string> parts;
    for (int64_t s : writer.missing_shards()) {
      auto [first, last] = writer.shard_windows(s);
      torch::Tensor ids = torch::randint(info.vocab_size, {last - first, info.seq_len, info.k});
      torch::Tensor lp = -torch::rand({last - first, info.seq_len, info.k}) * 5;
      writer.write_shard(s, ids, lp);
    }
    parts.push_back(file_bytes(dir / "meta.json"));
    for (int64_t s = 0; s < info.shards(); ++s) {
      char shard[32];
      std::snprintf(shard, sizeof shard, "shard-%05lld.bin", static_cast<long long>(s));
      parts.push_back(file_bytes(dir / shard));
    }
    return parts;
  };
  torch::manual_seed(0);
  std::vector<std::string> small = cache("small", {"fuzz", 2, 3, 3, 300, 2});
  put(out / "uint16-two-shards", joined(small));
  put(out / "int32-ids", joined(cache("wide", {"fuzz", 1, 2, 1, 70000, 1})));
  put(out / "bad-missing-shard", joined({small[0], small[1]}));
  put(out / "bad-meta-only", small[0]);
}

void logit_cache_seeds(const fs::path& out, const fs::path& tmp) {
  write_logit_cache_file(tmp / "l.bin", "fuzz", torch::arange(12, torch::kFloat32).reshape({3, 4}),
                         "fuzz seeds");
  const std::string whole = file_bytes(tmp / "l.bin");
  put(out / "logits-3x4.bin", whole);
  put(out / "bad-truncated.bin", whole.substr(0, whole.size() - 4));
  write_logit_cache_file(tmp / "k.bin", "another key", torch::zeros({1, 2}), "fuzz seeds");
  put(out / "bad-other-key.bin", file_bytes(tmp / "k.bin"));
}

void tokenizer_seeds(const fs::path& out) {
  put(out / "byte.json", make_byte_tokenizer()->files().json);
  std::string text;
  const char* verses[] = {
      "In the beginning God created the heaven and the earth.",
      "And the earth was without form, and void; and darkness was upon the face of the deep.",
      "And the Spirit of God moved upon the face of the waters.",
      "And God said, Let there be light: and there was light.",
      "And God saw the light, that it was good: and God divided the light from the darkness.",
      "And God called the light Day, and the darkness he called Night.",
      "And the evening and the morning were the first day."};
  for (int r = 0; r < 20; ++r)
    for (const char* v : verses) text += cat(v, " ", r, "\n");
  SentencePieceOptions o;
  o.vocab_size = 320;
  TokenizerFiles files = train_sentencepiece(text, o)->files();
  put(out / "sentencepiece-bpe", joined({files.json, files.model}));
  nlohmann::json j = nlohmann::json::parse(files.json);
  j["fingerprint"] = "fuzz";  // fuzz_tokenizer gives mutated models their real fingerprint
  put(out / "sentencepiece-model-fuzzed", joined({j.dump(2), files.model}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s tests/fuzz/corpus\n", argv[0]);
    return 2;
  }
  const fs::path corpus = argv[1], tmp = fuzz::fresh_scratch_dir();
  idx_seeds(corpus / "idx", tmp);
  safetensors_seeds(corpus / "safetensors", tmp);
  gguf_seeds(corpus / "gguf", tmp);
  topk_cache_seeds(corpus / "topk_cache", tmp);
  logit_cache_seeds(corpus / "logit_cache", tmp);
  tokenizer_seeds(corpus / "tokenizer");
  return 0;
}
