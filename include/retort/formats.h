// Model files other runtimes read: safetensors (Hugging Face), GGUF (llama.cpp), ONNX
// (ONNX Runtime). Exports take a model as load_model() gives it; the imports give one back,
// so `retort eval --model student/` works on what `retort export` wrote.
// Implementations: src/formats/<format>*.cpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "retort/model.h"

namespace retort {

struct ExportOptions {
  std::string dtype = "f32";  // tensor type in the file: f32 | f16 (safetensors, gguf; onnx: f32)
  int64_t opset = 17;         // ONNX opset of the graph
};

struct ExportResult {
  std::vector<std::filesystem::path> files;  // every file written
  int64_t bytes = 0;                         // their total size
  std::string summary;                       // one line for the CLI: what went where
};

// The format names `retort export --format` takes, and which model names each can hold.
std::vector<std::string> export_format_names();  // safetensors, gguf, onnx
// Writes `model` in `format` to `out` (a folder for safetensors, a file otherwise), each file
// atomically. A model the format cannot hold (a classifier to gguf, a gpt to onnx), an unknown
// format or dtype -> Error naming what was asked and what the format takes.
ExportResult export_model(const LoadedModel& model, const std::string& format, const std::filesystem::path& out,
                          const ExportOptions& options = {});

// ---- safetensors (src/formats/safetensors.cpp) ----------------------------------------------
// gpt students in the Hugging Face Llama layout (model.safetensors + config.json that
// LlamaForCausalLM accepts, + the tokenizer); mlp/cnn with retort's names and their own config.
ExportResult export_safetensors(const LoadedModel& model, const std::filesystem::path& dir,
                                const ExportOptions& options);
// True when `path` is a folder that export_safetensors wrote (model.safetensors + config.json).
bool is_safetensors_folder(const std::filesystem::path& path);
// The exact inverse of export_safetensors; truncated or inconsistent files -> Error naming the file.
LoadedModel import_safetensors(const std::filesystem::path& dir);

// ---- GGUF (src/formats/gguf.cpp) ------------------------------------------------------------
// gpt students as architecture `llama` with the tokenizer inside, loadable by llama.cpp.
ExportResult export_gguf(const LoadedModel& model, const std::filesystem::path& file, const ExportOptions& options);
bool is_gguf_file(const std::filesystem::path& path);  // by its magic number
// Reads a GGUF that export_gguf wrote back into a gpt model + tokenizer; truncated or foreign
// files -> Error naming the file and what is wrong.
LoadedModel import_gguf(const std::filesystem::path& file);

// ---- ONNX (src/formats/onnx.cpp) ------------------------------------------------------------
// mlp and cnn classifiers: input "images" (N, C, H, W) float32 with a dynamic N, output
// "logits" (N, classes).
ExportResult export_onnx(const LoadedModel& model, const std::filesystem::path& file, const ExportOptions& options);

}  // namespace retort
