// The dense logit cache's file format (logit_cache_file.h): read back only when whole.
#include "teachers/logit_cache_file.h"

#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"

namespace retort {

namespace {

constexpr char kLogitCacheMagic[8] = {'R', 'T', 'C', 'A', 'C', 'H', 'E', '1'};

std::string data_checksum(const torch::Tensor& t) {
  return Hasher().update(t.data_ptr(), t.numel() * t.element_size()).hex();
}

}  // namespace

torch::Tensor read_logit_cache_file(const fs::path& path, const std::string& key,
                                    std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  char magic[8];
  uint64_t hlen = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kLogitCacheMagic, 8) != 0)
    return *why = "bad magic", torch::Tensor();
  if (!in.read(reinterpret_cast<char*>(&hlen), 8) || hlen > (1 << 20))
    return *why = "bad header", torch::Tensor();
  std::string header(hlen, '\0');
  if (!in.read(header.data(), hlen)) return *why = "truncated header", torch::Tensor();
  nlohmann::json h = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || h.value("key", "") != key)
    return *why = "header does not match", torch::Tensor();
  auto shape = h.at("shape").get<std::vector<int64_t>>();
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  if (!in.read(static_cast<char*>(t.data_ptr()), t.numel() * 4) || in.peek() != EOF)
    return *why = "size does not match its header", torch::Tensor();
  if (data_checksum(t) != h.value("checksum", ""))
    return *why = "checksum mismatch", torch::Tensor();
  return t;
}

void write_logit_cache_file(const fs::path& path, const std::string& key,
                            const torch::Tensor& logits, const std::string& source) {
  nlohmann::json h = {{"kind", "dense-logits"},
                      {"key", key},
                      {"shape", logits.sizes().vec()},
                      {"dtype", "float32"},
                      {"checksum", data_checksum(logits)},
                      {"source", source}};
  std::string header = h.dump();
  uint64_t hlen = header.size();
  atomic_write(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(kLogitCacheMagic, 8);
    out.write(reinterpret_cast<const char*>(&hlen), 8);
    out.write(header.data(), hlen);
    out.write(static_cast<const char*>(logits.data_ptr()), logits.numel() * 4);
    out.close();
    if (!out) fail("cannot write teacher cache ", tmp);
  });
}

}  // namespace retort
