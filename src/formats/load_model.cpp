// load_model: one table of the model files retort reads, tried in order (see load_model.h).
#include "retort/load_model.h"

#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"

namespace retort {

namespace {

// A kind of model file: whether `path` holds one, and how to read it.
struct ModelReader {
  bool (*holds)(const fs::path& path);
  LoadedModel (*read)(const fs::path& path);
};

bool holds_gguf(const fs::path& path) { return fs::is_regular_file(path) && is_gguf_file(path); }

// What `retort export` writes first, then retort's own folders.
const ModelReader kReaders[] = {
    {&holds_gguf, &import_gguf},
    {&is_safetensors_folder, &import_safetensors},
    {&is_model_folder, &load_model_folder},
};

}  // namespace

LoadedModel load_model(const std::filesystem::path& path) {
  for (const ModelReader& r : kReaders)
    if (r.holds(path)) return r.read(path);
  fail("no model at '", path.string(),
       "': expected model.json there or in its model/ folder, or what ",
       "`retort export` wrote (a safetensors folder, a .gguf file)");
}

}  // namespace retort
