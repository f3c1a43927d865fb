// The GGUF container (ggml's docs/gguf.md, version 3), independent of any model: a writer of
// typed metadata and F32/F16 tensors, and a reader that checks the whole structure up front.
// What the keys and tensors mean for retort's gpt is gguf.cpp's business, not this file's.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "retort/hash.h"

namespace retort::gguf {

// gguf_metadata_value_type
enum class ValueType : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};
// The ggml tensor types retort writes and reads.
enum class TensorType : uint32_t { f32 = 0, f16 = 1 };

constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;  // when general.alignment is absent

// True when the file starts with the bytes "GGUF".
bool has_magic(const std::filesystem::path& path);

// ---- writing ------------------------------------------------------------------------

class Writer {
 public:
  void add_u32(const std::string& key, uint32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  void add_bytes(const std::string& key, const std::string& v);  // array of u8
  // `t`: any float tensor in torch's (outermost-first) shape; stored as `type` with the dims
  // reversed (GGUF lists the innermost first).
  void add_tensor(const std::string& name, const torch::Tensor& t, TensorType type);
  // Header, metadata, tensor infos, then the data, each tensor at a multiple of the alignment.
  void write(std::ostream& out) const;
  // Feeds each tensor's bytes as stored, in file order, to `h` (Reader::hash_tensors reads the
  // same from the file): what a digest of the tensor data covers.
  void hash_tensors(Hasher& h) const;

 private:
  struct Tensor {
    std::string name;
    torch::Tensor data;  // contiguous, CPU, in the stored type
    TensorType type;
  };
  void key(const std::string& k, ValueType t);
  std::string metadata_;  // the key-value pairs, serialized
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

// ---- reading ------------------------------------------------------------------------

struct TensorInfo {
  std::vector<int64_t> dims;  // innermost first, as in the file
  uint32_t type = 0;          // ggml type; tensor() reads TensorType's, others are only listed
  uint64_t offset = 0;        // from the start of the data section
};

// A GGUF file read into memory. Opening it checks the header, walks every metadata value and
// tensor info, and checks that each tensor's data lies inside the file; anything wrong
// -> Error naming the file and the problem. Accessors fail the same way on a missing key,
// a key of another type or a missing tensor.
class Reader {
 public:
  explicit Reader(const std::filesystem::path& path);
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  uint32_t u32(const std::string& key) const;
  float f32(const std::string& key) const;
  std::string string(const std::string& key) const;
  std::string bytes(const std::string& key) const;  // array of u8
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  // The tensor in torch's shape (dims reversed), as float32.
  torch::Tensor tensor(const std::string& name) const;
  // Feeds the bytes of every F32/F16 tensor, in file order, to `h`.
  void hash_tensors(Hasher& h) const;
  const std::filesystem::path& path() const { return path_; }
  // Error "GGUF file <path>: <what>".
  [[noreturn]] void fail_here(const std::string& what) const;

 private:
  struct Value {
    ValueType type;
    size_t begin;  // first byte of the value (after its type)
  };
  const Value& value(const std::string& key, ValueType type) const;
  std::filesystem::path path_;
  std::vector<uint8_t> data_;
  std::map<std::string, Value> values_;
  std::map<std::string, TensorInfo> tensors_;
  size_t data_start_ = 0;  // where the data section begins
};

}  // namespace retort::gguf
