// The model_file source: what `retort export` wrote, read back by the formats' readers (a .gguf
// file, a safetensors folder; see retort/load_model.h).
#include "local_teacher.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/load_model.h"

namespace retort {

bool matches_model_file(const std::string& source) {
  std::error_code ec;
  const bool gguf_name = source.size() > 5 && source.compare(source.size() - 5, 5, ".gguf") == 0;
  return gguf_name || (fs::is_regular_file(source, ec) && is_gguf_file(source)) ||
         is_safetensors_folder(source);
}

OpenedTeacher open_model_file(const std::string& source, const TeacherSourceOptions&) {
  return local_teacher(source, "model_file", source, load_model(source));
}

}  // namespace retort
