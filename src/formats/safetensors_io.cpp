// Reading and writing safetensors files (see safetensors_io.h); plain reads, one tensor at a
// time straight into its storage, so a file is never held twice in memory.
#include "formats/safetensors_io.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/json_depth.h"

namespace retort {

// Tensor bytes are copied between memory and file as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

namespace {

using json = nlohmann::json;

struct Dtype {
  const char* name;  // as the header spells it
  torch::ScalarType type;
};
constexpr std::array<Dtype, 10> kDtypes = {{{"F64", torch::kFloat64},
                                            {"F32", torch::kFloat32},
                                            {"F16", torch::kFloat16},
                                            {"BF16", torch::kBFloat16},
                                            {"I64", torch::kInt64},
                                            {"I32", torch::kInt32},
                                            {"I16", torch::kInt16},
                                            {"I8", torch::kInt8},
                                            {"U8", torch::kUInt8},
                                            {"BOOL", torch::kBool}}};

std::string known_dtypes() {
  std::string out;
  for (const auto& d : kDtypes) out += cat(out.empty() ? "" : ", ", d.name);
  return out;
}

// One tensor as the header describes it.
struct Entry {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
};

// Parses and checks one header entry; `where` starts every message ("safetensors file X").
Entry parse_entry(const std::string& where, const std::string& name, const json& v) {
  auto bad = [&](const auto&... what) { fail(where, ": tensor \"", name, "\" ", what...); };
  if (!v.is_object()) bad("is described by ", v.type_name(), ", expected an object");
  Entry e{name, torch::kFloat32, {}, 0, 0};

  const json* dtype = v.contains("dtype") ? &v.at("dtype") : nullptr;
  if (!dtype || !dtype->is_string()) bad("has no dtype string");
  auto known = std::find_if(kDtypes.begin(), kDtypes.end(),
                            [&](const Dtype& d) { return dtype->get<std::string>() == d.name; });
  if (known == kDtypes.end())
    bad("has dtype ", dtype->dump(), ", which is not one of ", known_dtypes());
  e.type = known->type;

  const json* shape = v.contains("shape") ? &v.at("shape") : nullptr;
  if (!shape || !shape->is_array()) bad("has no shape array");
  uint64_t numel = 1;
  for (const json& d : *shape) {
    if (!d.is_number_unsigned())
      bad("has shape ", shape->dump(), ": dimensions must be integers >= 0");
    uint64_t n = d.get<uint64_t>();
    if (n > (uint64_t{1} << 62) || __builtin_mul_overflow(numel, n, &numel))
      bad("has shape ", shape->dump(), ", too large to exist");
    e.shape.push_back(static_cast<int64_t>(n));
  }

  const json* offsets = v.contains("data_offsets") ? &v.at("data_offsets") : nullptr;
  if (!offsets || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    bad("has data_offsets ", offsets ? offsets->dump() : "(none)",
        ", expected [begin, end] in bytes");
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(c10::elementSize(e.type)), &bytes))
    bad("has shape ", shape->dump(), ", too large to exist");
  if (e.end < e.begin || e.end - e.begin != bytes)
    bad("(", known->name, " ", shape->dump(), ") needs ", bytes, " bytes, its data_offsets ",
        offsets->dump(), " hold ", e.end < e.begin ? "a negative count" : cat(e.end - e.begin));
  return e;
}

}  // namespace

int64_t write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                          const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::vector<torch::Tensor> data;  // CPU and contiguous, in file order
  Hasher digest;                    // of the data section
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (header.contains(name))
      fail("safetensors file ", path.string(), ": tensor name \"", name,
           "\" is used twice or reserved");
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    auto dtype = std::find_if(kDtypes.begin(), kDtypes.end(),
                              [&](const Dtype& d) { return d.type == t.scalar_type(); });
    if (dtype == kDtypes.end())
      fail("safetensors file ", path.string(), ": tensor \"", name, "\" has type ", t.scalar_type(),
           ", which safetensors cannot hold (it takes ", known_dtypes(), ")");
    const uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", dtype->name},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", json::array({offset, offset + bytes})}};
    offset += bytes;
    digest.update(t.data_ptr(), bytes);
    data.push_back(t);
  }
  json meta = metadata;
  meta[kSafetensorsDigestKey] = digest_text(digest);
  header["__metadata__"] = meta;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data then starts 8-byte aligned

  atomic_write(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail("cannot write ", tmp.string());
    const uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const torch::Tensor& t : data)
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.close();
    if (!out) fail("write failed for ", tmp.string());
  });
  return static_cast<int64_t>(sizeof(uint64_t) + text.size() + offset);
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  const std::string where = cat("safetensors file ", path.string());
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (!in || ec) fail("cannot read ", where, ": no such file or not readable");
  if (size < 8) fail(where, " is truncated: ", size, " bytes, less than the 8-byte header length");

  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), sizeof n);
  if (n > size - 8)
    fail(where, ": header length ", n, " is larger than the file (", size, " bytes)");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  if (!in) fail("cannot read ", where, ": reading its ", n, "-byte header failed");
  if (json_nests_deeper_than(text))
    fail(where, ": the ", n, "-byte header nests more than ", kMaxJsonDepth,
         " levels deep; a safetensors header has 3");
  json header;
  try {
    header = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(where, ": the ", n, "-byte header is not JSON (parse error at byte ", e.byte, ")");
  } catch (const json::exception& e) {  // out_of_range: a number like 1e999
    fail(where, ": the ", n, "-byte header holds a value JSON cannot read: ", e.what());
  }
  if (!header.is_object())
    fail(where, ": the header is a JSON ", header.type_name(), ", expected an object");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name != "__metadata__") {
      entries.push_back(parse_entry(where, name, v));
      continue;
    }
    if (!v.is_object())
      fail(where, ": __metadata__ is a JSON ", v.type_name(), ", expected an object of strings");
    for (const auto& [key, value] : v.items()) {
      if (!value.is_string())
        fail(where, ": __metadata__ \"", key, "\" is ", value.dump(), ", expected a string");
      out.metadata[key] = value.get<std::string>();
    }
  }

  // The data section must be covered exactly: sorted by offset, each tensor starts where the
  // previous one ended, and the last ends at the end of the file.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t pos = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < pos)
      fail(where, ": tensors \"", entries[i - 1].name, "\" and \"", e.name,
           "\" overlap (the second begins at byte ", e.begin, ", the first ends at ", pos, ")");
    if (e.begin > pos)
      fail(where, ": bytes [", pos, ", ", e.begin, ") before tensor \"", e.name,
           "\" belong to no tensor (data_offsets must cover the data without gaps)");
    pos = e.end;
  }
  const uint64_t data_size = size - 8 - n;
  if (pos > data_size)
    fail(where, " is truncated: its tensors need ", pos, " bytes of data, the file holds ",
         data_size);
  if (pos < data_size)
    fail(where, ": ", data_size - pos, " bytes after the last tensor belong to no tensor (data is ",
         data_size, " bytes, the tensors cover ", pos, ")");

  Hasher digest;  // of the data section: the tensors in offset order cover it exactly
  for (const Entry& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.type));
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in)
      fail("cannot read ", where, ": reading tensor \"", e.name, "\" at byte ", 8 + n + e.begin,
           " failed");
    digest.update(t.data_ptr(), e.end - e.begin);
    out.tensors.emplace(e.name, std::move(t));
  }
  auto recorded = out.metadata.find(kSafetensorsDigestKey);
  check_digest(cat("the tensor data of ", where), digest_text(digest),
               recorded == out.metadata.end() ? "" : recorded->second,
               cat("its __metadata__ \"", kSafetensorsDigestKey, "\""));
  return out;
}

}  // namespace retort
