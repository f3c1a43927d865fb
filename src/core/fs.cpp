// Atomic writes and small file helpers.
#include "retort/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
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
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail("cannot read ", path, ": no such file or not readable");
  std::vector<uint8_t> out(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size())))
    fail("reading ", path, " failed");
  return out;
}

// ---- temporaries a killed writer left ------------------------------------------------------

namespace {
// When this process started (static initialisation, before any write of its own).
const fs::file_time_type fs_process_start = fs::file_time_type::clock::now();
}  // namespace

int remove_orphaned_temporaries(const fs::path& dir, const std::regex& names) {
  // atomic_write's temporaries: ".<name>.tmp<pid>-<random>".
  static const std::regex temporary(R"(\.(.+)\.tmp(\d+)-\d+)");
  std::error_code ec;
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || !std::regex_match(name, m, temporary) || !std::regex_match(m[1].str(), names))
      continue;
    // A writer that is still running (its pid alive here) or that wrote since we started keeps its file.
    const long pid = std::strtol(m[2].str().c_str(), nullptr, 10);
    const bool writer_alive = pid > 0 && pid <= INT32_MAX && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (writer_alive || entry.last_write_time(ec) >= fs_process_start || ec) continue;
    if (fs::remove(entry.path(), ec)) ++removed;
  }
  if (removed > 0)
    std::fprintf(stderr, "retort: removed %d temporary file%s that a killed run left in %s\n", removed,
                 removed == 1 ? "" : "s", dir.c_str());
  return removed;
}

fs::path default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "retort";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "retort";
  return fs::path(".cache") / "retort";
}

}  // namespace retort
