// The safetensors file format (Hugging Face): an 8-byte little-endian header length N, N bytes
// of JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}),
// then the raw little-endian tensor bytes, offsets counted from the end of the header.
// Only the file layer: which tensors a model has and what they are called is safetensors.cpp.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace retort {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;  // in file order

// The "__metadata__" key under which retort records the digest of the data section (every
// tensor's bytes in file order; retort/hash.h's digest_text).
constexpr const char* kSafetensorsDigestKey = "retort.digest";

struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;  // CPU, in the dtype the file stores
  std::map<std::string, std::string> metadata;   // "__metadata__"; empty when absent
};

// Writes `tensors` (any device; float64/32/16, bfloat16, int64/32/8, uint8 or bool) contiguously
// in the given order, the header padded with spaces to a multiple of 8, atomically. `metadata`
// goes into "__metadata__" with the data's digest under kSafetensorsDigestKey (replacing any
// given there). Duplicate names or an unsupported dtype -> Error. Returns the file's size in bytes.
int64_t write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                          const std::map<std::string, std::string>& metadata);

// Reads and validates a whole file: header length against the file size, the header as JSON,
// each entry's dtype, shape and offsets (in range, no overlap, no gap, sizes matching the shape),
// and that the data ends exactly where the file does. Any violation -> Error of one line that
// names the file, the tensor and what was expected versus found. The data must match the digest
// under kSafetensorsDigestKey (else Damaged naming the file and both digests); a file without
// one (written elsewhere) loads with a warning on stderr.
SafetensorsFile read_safetensors(const std::filesystem::path& path);

}  // namespace retort
