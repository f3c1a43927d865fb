// The torchscript: source: "torchscript:FILE.pt", a module traced or scripted in PyTorch
// (load_torchscript, src/models/torchscript.cpp).
#include "local_teacher.h"

namespace retort {

namespace {
constexpr const char* kPrefix = "torchscript:";
}

bool matches_torchscript(const std::string& source) { return source.rfind(kPrefix, 0) == 0; }

OpenedTeacher open_torchscript(const std::string& source, const TeacherSourceOptions&) {
  const std::string file = source.substr(std::string(kPrefix).size());
  return local_teacher(source, "torchscript", file, load_torchscript(file));
}

}  // namespace retort
