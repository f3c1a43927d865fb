// What the fuzz targets (fuzz_<name>.cpp) share: a scratch folder for readers that take paths,
// inputs made of several files, and a check that aborts (a finding) when a reader that accepted
// an input broke its own promise about it. Each target's LLVMFuzzerTestOneInput calls the real
// reader on the bytes; retort::Error (a clear refusal) is the expected answer to bad bytes, and
// anything else escaping (a crash, a sanitizer report, another exception) is a bug in the reader.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace retort::fuzz {

namespace fs = std::filesystem;

// A folder of this process's own under $TMPDIR (several fuzzers may run at once), emptied on
// each call and removed at exit.
inline const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/retort-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) {
      std::perror("retort fuzz: mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch_dir(), ec);
    });
    return fs::path(pattern);
  }();
  return dir;
}

// An empty scratch folder (everything a previous input left is removed).
inline fs::path fresh_scratch_dir() {
  const fs::path& dir = scratch_dir();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
  return dir;
}

inline fs::path write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "retort fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// Inputs that stand for several files hold them one after the other, split by this line.
constexpr std::string_view kPartSeparator = "\n---8<---\n";

// The parts of an input; always at least one (the whole input when it has no separator).
inline std::vector<std::string_view> split_parts(std::string_view input) {
  std::vector<std::string_view> parts;
  for (;;) {
    size_t at = input.find(kPartSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(input.substr(0, at));
    input.remove_prefix(at + kPartSeparator.size());
  }
  parts.push_back(input);
  return parts;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace retort::fuzz

// A promise the reader made about what it returns, broken: a finding, like a crash.
#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);  \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
