// Opening a model from whatever holds it: a retort model or run folder, what `retort export`
// wrote (a safetensors folder, a .gguf file). Teachers (TorchScript files and endpoints too) are
// opened by source: retort/teacher_source.h. Lives with
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

}  // namespace retort
