// Atomic writes and small file helpers.
#include "retort/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "retort/error.h"

namespace retort {

namespace {
void fsync_path(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

void atomic_write(const fs::path& path, const std::function<void(const fs::path&)>& writer) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create folder ", dir, ": ", ec.message());
  std::random_device rd;
  fs::path tmp = dir / cat(".", path.filename().string(), ".tmp", ::getpid(), "-", rd());
  try {
    writer(tmp);
    fsync_path(tmp);
    fs::rename(tmp, path);
    fsync_path(dir);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

void atomic_write_text(const fs::path& path, const std::string& text) {
  atomic_write(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail("cannot write ", tmp);
    out << text;
    out.close();
    if (!out) fail("write failed for ", tmp);
  });
}

void ensure_writable_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    fail("run folder ", dir, " cannot be created: ", ec ? ec.message() : "not a folder");
  fs::path probe = dir / ".write-test";
  {
    std::ofstream out(probe);
    if (!out) fail("run folder ", dir, " is not writable");
  }
  fs::remove(probe, ec);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read ", path, ": no such file or not readable");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read ", path, ": no such file or not readable");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

fs::path default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "retort";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "retort";
  return fs::path(".cache") / "retort";
}

}  // namespace retort
