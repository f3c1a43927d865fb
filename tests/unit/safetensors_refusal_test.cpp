// safetensors files and folders retort refuses, each with one line naming the file: truncated,
// a header longer than the file or not JSON, bad entries, wrong, missing or extra tensors, a
// config without retort's spec. Round trips: safetensors_test.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/safetensors_io.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/model.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;
using retort::testing::tiny_gpt;
using json = nlohmann::json;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

json read_json(const fs::path& p) { return json::parse(read_text(p)); }

// The raw parts of a safetensors file, for breaking it on purpose.
struct RawFile {
  std::string header;
  std::string data;
};

RawFile read_raw(const fs::path& p) {
  std::string all = read_text(p);
  uint64_t n = 0;
  std::memcpy(&n, all.data(), 8);
  return {all.substr(8, n), all.substr(8 + n)};
}

// Writes a file with the given header length field, header text and data bytes.
void write_raw(const fs::path& p, uint64_t header_length, const std::string& header,
               const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(&header_length), 8);
  out << header << data;
}

void write_raw(const fs::path& p, const json& header, const std::string& data) {
  std::string text = header.dump();
  write_raw(p, text.size(), text, data);
}

}  // namespace

TEST(SafetensorsRefusal, FolderRecognisedOnlyWithWeightsAndConfig) {
  TempDir tmp;
  EXPECT_FALSE(is_safetensors_folder(tmp.path()));
  export_safetensors(tiny_gpt(), tmp / "out", {});
  EXPECT_TRUE(is_safetensors_folder(tmp / "out"));
  EXPECT_FALSE(is_safetensors_folder(tmp / "out" / "model.safetensors"));
  fs::remove(tmp / "out" / "config.json");
  EXPECT_FALSE(is_safetensors_folder(tmp / "out"));
  atomic_write_text(tmp / "file", "x");
  std::string msg = error_of([&] { export_safetensors(tiny_gpt(), tmp / "file", {}); });
  EXPECT_TRUE(contains(msg, "is a file")) << msg;
}

TEST(SafetensorsRefusal, TruncatedFileNamedWithBytesNeededAndHeld) {
  TempDir tmp;
  export_safetensors(tiny_gpt(), tmp.path(), {});
  const fs::path p = tmp / "model.safetensors";
  fs::resize_file(p, fs::file_size(p) - 10);
  std::string msg = error_of([&] { import_safetensors(tmp.path()); });
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "truncated")) << msg;
  fs::resize_file(p, 5);
  msg = error_of([&] { import_safetensors(tmp.path()); });
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "truncated: 5 bytes")) << msg;
}

TEST(SafetensorsRefusal, HeaderLongerThanFileOrNotJsonNamed) {
  TempDir tmp;
  export_safetensors(tiny_gpt(), tmp.path(), {});
  const fs::path p = tmp / "model.safetensors";
  RawFile raw = read_raw(p);
  write_raw(p, uint64_t{1} << 40, raw.header, raw.data);
  std::string msg = error_of([&] { import_safetensors(tmp.path()); });
  EXPECT_TRUE(contains(msg, p.string()) &&
              contains(msg, "header length 1099511627776 is larger than the file"))
      << msg;
  raw.header[0] = '[';
  write_raw(p, raw.header.size(), raw.header, raw.data);
  msg = error_of([&] { import_safetensors(tmp.path()); });
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "is not JSON")) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(SafetensorsRefusal, BadEntriesNamedWithExpectedAndFound) {
  TempDir tmp;
  const fs::path p = tmp / "x.safetensors";
  const std::string data(24, '\0');
  auto error_for = [&](const json& header) {
    write_raw(p, header, data);
    return error_of([&] { read_safetensors(p); });
  };
  json ok = {{"a", {{"dtype", "F32"}, {"shape", {2, 1}}, {"data_offsets", {0, 8}}}},
             {"b", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {8, 24}}}}};
  EXPECT_EQ(error_for(ok), "(no error)");

  json h = ok;
  h["a"]["dtype"] = "F8_E4M3";
  std::string msg = error_for(h);
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "\"a\"") &&
              contains(msg, "dtype \"F8_E4M3\""))
      << msg;

  h = ok;
  h["b"]["data_offsets"] = {4, 20};
  msg = error_for(h);
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "overlap")) << msg;

  h = ok;
  h["b"]["data_offsets"] = {8, 20};  // 12 bytes for 4 floats
  msg = error_for(h);
  EXPECT_TRUE(contains(msg, "\"b\"") && contains(msg, "needs 16 bytes") && contains(msg, "hold 12"))
      << msg;

  h = ok;
  h["b"]["shape"] = json::array({3});
  h["b"]["data_offsets"] = {12, 24};  // bytes 8..12 belong to nobody
  msg = error_for(h);
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "[8, 12)") && contains(msg, "no tensor"))
      << msg;

  h = ok;
  h["b"]["data_offsets"] = {8, 40};
  h["b"]["shape"] = json::array({8});
  msg = error_for(h);
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "truncated") &&
              contains(msg, "need 40 bytes") && contains(msg, "holds 24"))
      << msg;
}

TEST(SafetensorsRefusal, WrongShapeMissingOrExtraTensorNamed) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"tie_embeddings", false}});
  export_safetensors(m, tmp.path(), {});
  const fs::path p = tmp / "model.safetensors";
  SafetensorsFile f = read_safetensors(p);
  auto rewrite = [&](std::map<std::string, torch::Tensor> tensors) {
    NamedTensors list(tensors.begin(), tensors.end());
    write_safetensors(p, list, f.metadata);
    return error_of([&] { import_safetensors(tmp.path()); });
  };

  auto tensors = f.tensors;
  tensors["model.layers.1.mlp.up_proj.weight"] = torch::zeros({95, 32});
  std::string msg = rewrite(tensors);
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "model.layers.1.mlp.up_proj.weight") &&
              contains(msg, "[95, 32]") && contains(msg, "expects [96, 32]"))
      << msg;

  tensors = f.tensors;
  tensors.erase("lm_head.weight");
  msg = rewrite(tensors);
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "no tensor \"lm_head.weight\"")) << msg;

  tensors = f.tensors;
  tensors["model.layers.2.input_layernorm.weight"] = torch::ones({32});
  msg = rewrite(tensors);
  EXPECT_TRUE(contains(msg, p.string()) && contains(msg, "model.layers.2.input_layernorm.weight") &&
              contains(msg, "not part of"))
      << msg;
}

TEST(SafetensorsRefusal, ConfigWithoutRetortSpecNamed) {
  TempDir tmp;
  export_safetensors(tiny_gpt(), tmp.path(), {});
  json c = read_json(tmp / "config.json");
  c.erase("retort");
  atomic_write_text(tmp / "config.json", c.dump());
  std::string msg = error_of([&] { import_safetensors(tmp.path()); });
  EXPECT_TRUE(contains(msg, (tmp / "config.json").string()) && contains(msg, "\"retort\"")) << msg;
  atomic_write_text(tmp / "config.json", "{not json");
  msg = error_of([&] { import_safetensors(tmp.path()); });
  EXPECT_TRUE(contains(msg, (tmp / "config.json").string()) && contains(msg, "not valid JSON"))
      << msg;
}
