// The dense logit cache's file: "RTCACHE1", a u64 little-endian header length, a JSON header
// ({"kind": "dense-logits", "key", "shape", "dtype": "float32", "checksum", "source"}), then the
// float32 logits (N, classes). When and under which key it is built: logit_cache.cpp.
// Private to src/teachers.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <string>

namespace retort {

// The logits in `path` when it is a whole cache file for `key`: the header parses, names the
// key, and the data has the header's shape and checksum. Otherwise an undefined tensor, with
// *why saying what was wrong ("" when the file does not exist); never throws for bad bytes.
torch::Tensor read_logit_cache_file(const std::filesystem::path& path, const std::string& key,
                                    std::string* why);

// Writes `logits` (float32, contiguous, CPU) under `key` atomically; `source` names the data.
void write_logit_cache_file(const std::filesystem::path& path, const std::string& key,
                            const torch::Tensor& logits, const std::string& source);

}  // namespace retort
