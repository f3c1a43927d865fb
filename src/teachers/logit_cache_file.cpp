// The dense logit cache's file format (logit_cache_file.h): read back only when whole.
#include "teachers/logit_cache_file.h"

#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/json_depth.h"

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
  auto refuse = [&](const char* reason) {
    *why = reason;
    return torch::Tensor();
  };
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  char magic[8];
  uint64_t hlen = 0;
  if (ec || !in.read(magic, 8) || std::memcmp(magic, kLogitCacheMagic, 8) != 0)
    return refuse("bad magic");
  if (!in.read(reinterpret_cast<char*>(&hlen), 8) || hlen > (1 << 20)) return refuse("bad header");
  std::string header(hlen, '\0');
  if (!in.read(header.data(), hlen)) return refuse("truncated header");
  if (json_nests_deeper_than(header)) return refuse("header does not match");
  nlohmann::json h = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!h.is_object() || !h.contains("key") || h["key"] != key)
    return refuse("header does not match");
  // The shape must be (N, classes) of the floats the file holds after its header, no more: a
  // header is only a claim, and the tensor is allocated from it.
  const uint64_t data_bytes = size - std::min(size, 16 + hlen);
  if (!h.contains("shape") || !h["shape"].is_array() || h["shape"].size() != 2)
    return refuse("header has no shape [rows, classes]");
  const nlohmann::json& shape = h["shape"];
  uint64_t numel = 1;
  for (const auto& d : shape)
    if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 62) ||
        __builtin_mul_overflow(numel, d.get<uint64_t>(), &numel))
      return refuse("header has no shape [rows, classes]");
  if (numel > data_bytes / 4 || numel * 4 != data_bytes)
    return refuse("size does not match its header");
  torch::Tensor t =
      torch::empty({shape[0].get<int64_t>(), shape[1].get<int64_t>()}, torch::kFloat32);
  if (numel > 0 &&
      !in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(numel * 4)))
    return refuse("size does not match its header");
  if (!h.contains("checksum") || !h["checksum"].is_string() ||
      data_checksum(t) != h["checksum"].get<std::string>())
    return refuse("checksum mismatch");
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
