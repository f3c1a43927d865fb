// The GGUF container: writing typed metadata and tensors, and reading them back with every
// length, count and offset checked against the file before it is used.
#include "gguf_io.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "retort/error.h"
#include "retort/fs.h"

namespace retort::gguf {

// GGUF is little-endian; values are copied to and from the file as they lie in memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the GGUF code assumes a little-endian host");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr int kMaxArrayDepth = 4;  // arrays of arrays nest at most this deep
constexpr uint32_t kMaxDims = 4;   // ggml tensors have at most 4 dimensions

uint64_t align_up(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

int64_t element_size(TensorType t) { return t == TensorType::f16 ? 2 : 4; }

// Whether a ggml type is one of TensorType's (the others are listed but not read).
bool readable(uint32_t ggml_type) {
  return ggml_type == static_cast<uint32_t>(TensorType::f32) ||
         ggml_type == static_cast<uint32_t>(TensorType::f16);
}

// Bytes of a scalar value of type t; 0 for strings and arrays.
size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::u8:
    case ValueType::i8:
    case ValueType::boolean:
      return 1;
    case ValueType::u16:
    case ValueType::i16:
      return 2;
    case ValueType::u32:
    case ValueType::i32:
    case ValueType::f32:
      return 4;
    case ValueType::u64:
    case ValueType::i64:
    case ValueType::f64:
      return 8;
    default:
      return 0;
  }
}

const char* type_name(ValueType t) {
  static const char* names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                "int32",  "float32", "bool",   "string", "array",
                                "uint64", "int64",   "float64"};
  auto i = static_cast<uint32_t>(t);
  return i < sizeof(names) / sizeof(names[0]) ? names[i] : "unknown";
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

template <typename T>
void put_array(std::string& out, ValueType element, const std::vector<T>& v) {
  put(out, element);
  put<uint64_t>(out, v.size());
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Reads forward through the file bytes; running past the end is an error naming `what`.
class Cursor {
 public:
  Cursor(const Reader& file, const std::vector<uint8_t>& data, size_t pos = 0)
      : file_(file), data_(data), pos_(pos) {}
  size_t pos() const { return pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > data_.size() - pos_)
      file_.fail_here(cat("truncated: ", what, " needs ", n, " bytes at offset ", pos_,
                          ", the file has ", data_.size() - pos_, " left (", data_.size(),
                          " bytes in all)"));
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // Steps over one value of type t, checking that it lies inside the file.
  void skip_value(ValueType t, const std::string& what, int depth = 0) {
    if (size_t n = scalar_size(t)) {
      need(n, what);
      pos_ += n;
    } else if (t == ValueType::string) {
      read_string(what);
    } else if (t == ValueType::array) {
      if (depth == kMaxArrayDepth)
        file_.fail_here(cat(what, " nests arrays deeper than ", kMaxArrayDepth));
      auto element = read<ValueType>(what);
      uint64_t n = read<uint64_t>(what);
      if (size_t size = scalar_size(element)) {
        if (n > (data_.size() - pos_) / size)
          file_.fail_here(cat("truncated: ", what, " holds ", n, " values of ", size,
                              " bytes at offset ", pos_, ", the file has ", data_.size() - pos_,
                              " bytes left"));
        pos_ += n * size;
      } else {
        // strings and arrays: at least 8 bytes each, so a huge count runs out of file quickly
        for (uint64_t i = 0; i < n; ++i) skip_value(element, what, depth + 1);
      }
    } else {
      file_.fail_here(cat(what, " has unknown value type ", static_cast<uint32_t>(t)));
    }
  }

 private:
  const Reader& file_;
  const std::vector<uint8_t>& data_;
  size_t pos_;
};

}  // namespace

bool has_magic(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char head[4] = {};
  return in.read(head, 4) && std::memcmp(head, kMagic, 4) == 0;
}

// ---- writing ------------------------------------------------------------------------

void Writer::key(const std::string& k, ValueType t) {
  put_string(metadata_, k);
  put(metadata_, t);
  ++kv_count_;
}

void Writer::add_u32(const std::string& k, uint32_t v) {
  key(k, ValueType::u32);
  put(metadata_, v);
}

void Writer::add_f32(const std::string& k, float v) {
  key(k, ValueType::f32);
  put(metadata_, v);
}

void Writer::add_bool(const std::string& k, bool v) {
  key(k, ValueType::boolean);
  put<uint8_t>(metadata_, v ? 1 : 0);
}

void Writer::add_string(const std::string& k, const std::string& v) {
  key(k, ValueType::string);
  put_string(metadata_, v);
}

void Writer::add_strings(const std::string& k, const std::vector<std::string>& v) {
  key(k, ValueType::array);
  put(metadata_, ValueType::string);
  put<uint64_t>(metadata_, v.size());
  for (const auto& s : v) put_string(metadata_, s);
}

void Writer::add_f32s(const std::string& k, const std::vector<float>& v) {
  key(k, ValueType::array);
  put_array(metadata_, ValueType::f32, v);
}

void Writer::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(k, ValueType::array);
  put_array(metadata_, ValueType::i32, v);
}

void Writer::add_bytes(const std::string& k, const std::string& v) {
  key(k, ValueType::array);
  put_array(metadata_, ValueType::u8, std::vector<char>(v.begin(), v.end()));
}

void Writer::add_tensor(const std::string& name, const torch::Tensor& t, TensorType type) {
  auto dtype = type == TensorType::f16 ? torch::kHalf : torch::kFloat32;
  tensors_.push_back({name, t.detach().to(torch::kCPU, dtype).contiguous(), type});
}

void Writer::write(std::ostream& out) const {
  std::string head;
  head.append(kMagic, 4);
  put(head, kVersion);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_count_);
  head += metadata_;
  uint64_t offset = 0;  // of each tensor in the data section
  for (const auto& t : tensors_) {
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.data.dim()));
    for (int64_t d = t.data.dim() - 1; d >= 0; --d) put<uint64_t>(head, t.data.size(d));
    put(head, t.type);
    put(head, offset);
    offset = align_up(offset + t.data.numel() * element_size(t.type), kDefaultAlignment);
  }
  head.resize(align_up(head.size(), kDefaultAlignment), '\0');
  out.write(head.data(), static_cast<std::streamsize>(head.size()));
  const std::string zeros(kDefaultAlignment, '\0');
  for (const auto& t : tensors_) {
    auto n = static_cast<uint64_t>(t.data.numel() * element_size(t.type));
    out.write(static_cast<const char*>(t.data.data_ptr()), static_cast<std::streamsize>(n));
    out.write(zeros.data(), static_cast<std::streamsize>(align_up(n, kDefaultAlignment) - n));
  }
}

void Writer::hash_tensors(Hasher& h) const {
  for (const auto& t : tensors_) h.update(t.data.data_ptr(), t.data.numel() * element_size(t.type));
}

// ---- reading ------------------------------------------------------------------------

Reader::Reader(const std::filesystem::path& path) : path_(path) {
  if (!fs::is_regular_file(path)) fail("GGUF file ", path.string(), " does not exist");
  data_ = read_bytes(path);
  Cursor c(*this, data_);
  c.need(4, "the magic number");
  if (std::memcmp(data_.data(), kMagic, 4) != 0)
    fail_here("not a GGUF file (it does not start with \"GGUF\")");
  c.read<uint32_t>("the magic number");
  auto version = c.read<uint32_t>("the version");
  if (version != kVersion)
    fail_here(cat("GGUF version ", version, " is not supported; retort reads version ", kVersion));
  auto n_tensors = c.read<uint64_t>("the tensor count");
  auto n_values = c.read<uint64_t>("the metadata count");

  for (uint64_t i = 0; i < n_values; ++i) {
    std::string k = c.read_string(cat("the key of metadata entry ", i));
    auto type = c.read<ValueType>(cat("the type of metadata key ", k));
    if (!values_.emplace(k, Value{type, c.pos()}).second)
      fail_here(cat("metadata key ", k, " appears twice"));
    c.skip_value(type, cat("metadata key ", k));
  }
  uint64_t alignment = kDefaultAlignment;
  if (has("general.alignment")) {
    alignment = u32("general.alignment");
    if (alignment == 0 || alignment % 8 != 0)
      fail_here(cat("general.alignment ", alignment, " is not a multiple of 8"));
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    std::string name = c.read_string(cat("the name of tensor ", i));
    std::string what = cat("tensor ", name);
    TensorInfo info;
    auto n_dims = c.read<uint32_t>(what);
    if (n_dims > kMaxDims)
      fail_here(cat(what, " has ", n_dims, " dimensions; ggml allows at most ", kMaxDims));
    for (uint32_t d = 0; d < n_dims; ++d) {
      auto size = c.read<uint64_t>(what);
      if (size > (uint64_t{1} << 40)) fail_here(cat(what, " has a dimension of ", size));
      info.dims.push_back(static_cast<int64_t>(size));
    }
    info.type = c.read<uint32_t>(what);
    info.offset = c.read<uint64_t>(what);
    if (info.offset % alignment != 0)
      fail_here(cat(what, " starts at offset ", info.offset, ", not a multiple of the alignment ",
                    alignment));
    if (!tensors_.emplace(name, info).second) fail_here(cat("tensor ", name, " appears twice"));
  }
  data_start_ = align_up(c.pos(), alignment);

  // Tensors retort reads must lie inside the file; other types are only listed.
  for (const auto& [name, info] : tensors_) {
    if (!readable(info.type)) continue;
    // Sizes in long double: a forged header must not wrap around 2^64 into something small.
    long double end = static_cast<long double>(data_start_) + info.offset;
    long double bytes = element_size(static_cast<TensorType>(info.type));
    for (int64_t d : info.dims) bytes *= d;
    if (end + bytes > data_.size())
      fail_here(cat("truncated: the data of tensor ", name, " (", static_cast<double>(bytes),
                    " bytes at offset ", info.offset, " of the data section, which starts at byte ",
                    data_start_, ") lies beyond the end of the file (", data_.size(), " bytes)"));
  }
}

void Reader::hash_tensors(Hasher& h) const {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (offset, bytes) in file order
  for (const auto& [name, info] : tensors_) {
    if (!readable(info.type)) continue;
    uint64_t bytes = element_size(static_cast<TensorType>(info.type));
    for (int64_t d : info.dims) bytes *= d;  // the constructor checked that it lies inside the file
    ranges.emplace_back(info.offset, bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (const auto& [offset, bytes] : ranges) h.update(data_.data() + data_start_ + offset, bytes);
}

void Reader::fail_here(const std::string& what) const {
  fail("GGUF file ", path_.string(), ": ", what);
}

const Reader::Value& Reader::value(const std::string& key, ValueType type) const {
  auto it = values_.find(key);
  if (it == values_.end()) fail_here(cat("metadata key ", key, " is missing"));
  if (it->second.type != type)
    fail_here(cat("metadata key ", key, " is a ", type_name(it->second.type), ", expected a ",
                  type_name(type)));
  return it->second;
}

uint32_t Reader::u32(const std::string& key) const {
  return Cursor(*this, data_, value(key, ValueType::u32).begin).read<uint32_t>(key);
}

float Reader::f32(const std::string& key) const {
  return Cursor(*this, data_, value(key, ValueType::f32).begin).read<float>(key);
}

std::string Reader::string(const std::string& key) const {
  return Cursor(*this, data_, value(key, ValueType::string).begin).read_string(key);
}

std::string Reader::bytes(const std::string& key) const {
  Cursor c(*this, data_, value(key, ValueType::array).begin);
  auto element = c.read<ValueType>(key);
  if (element != ValueType::u8 && element != ValueType::i8)
    fail_here(
        cat("metadata key ", key, " is an array of ", type_name(element), ", expected uint8"));
  uint64_t n = c.read<uint64_t>(key);  // skip_value checked that the bytes are there
  return std::string(reinterpret_cast<const char*>(data_.data() + c.pos()), n);
}

torch::Tensor Reader::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail_here(cat("tensor ", name, " is missing"));
  const TensorInfo& info = it->second;
  if (!readable(info.type))
    fail_here(
        cat("tensor ", name, " has ggml type ", info.type, "; retort reads F32 (0) and F16 (1)"));
  auto type = static_cast<TensorType>(info.type);
  std::vector<int64_t> shape(info.dims.rbegin(), info.dims.rend());
  torch::Tensor t = torch::empty(shape, type == TensorType::f16 ? torch::kHalf : torch::kFloat32);
  if (t.numel() > 0)  // an empty tensor has no storage: memcpy must not see its null pointer
    std::memcpy(t.data_ptr(), data_.data() + data_start_ + info.offset,
                t.numel() * element_size(type));
  return t.to(torch::kFloat32);
}

}  // namespace retort::gguf
