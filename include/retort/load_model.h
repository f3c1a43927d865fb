// Opening a model from whatever holds it: a retort model or run folder, what `retort export`
// wrote (a safetensors folder, a .gguf file), or, for teachers, a TorchScript file. Lives with
// the formats (src/formats/load_model.cpp), the floor that knows every file a model comes in.
#pragma once
#include <filesystem>
#include <string>

#include "retort/model.h"

namespace retort {

// The model at `path`, read by the first reader that recognises it: a .gguf file (import_gguf),
// a safetensors folder (import_safetensors), a model or run folder (load_model_folder). None ->
// Error naming the path and what was expected there.
LoadedModel load_model(const std::filesystem::path& path);

// A teacher by source: "torchscript:FILE" (load_torchscript), or a model path (load_model).
LoadedModel load_teacher(const std::string& source);

}  // namespace retort
