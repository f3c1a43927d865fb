// The folder source: a retort run or model folder, and any other path without a "scheme:"
// prefix (load_model then says what it expected there).
#include <cctype>

#include "local_teacher.h"
#include "retort/fs.h"
#include "retort/load_model.h"

namespace retort {

namespace {

// "hf:gpt2", "s3:bucket": letters, digits, + - . before a ':' (no '/': "runs/a:b" is a path).
bool has_scheme(const std::string& source) {
  size_t colon = source.find(':');
  if (colon == std::string::npos || colon == 0 ||
      !std::isalpha(static_cast<unsigned char>(source[0])))
    return false;
  for (size_t i = 0; i < colon; ++i) {
    char ch = source[i];
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '+' && ch != '-' && ch != '.')
      return false;
  }
  return true;
}

}  // namespace

bool matches_folder(const std::string& source) {
  std::error_code ec;
  return !has_scheme(source) || fs::exists(source, ec);
}

OpenedTeacher open_folder(const std::string& source, const TeacherSourceOptions&) {
  return local_teacher(source, "folder", source, load_model(source));
}

}  // namespace retort
