// File-system helpers that keep the promise "a crash never leaves a half-written
// file": every write goes to a temporary sibling, is flushed, then renamed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <vector>

namespace retort {

namespace fs = std::filesystem;

// Writes through `writer(tmp_path)` then renames tmp_path onto `path` atomically.
// The temporary is removed if `writer` throws.
void atomic_write(const fs::path& path, const std::function<void(const fs::path&)>& writer);
void atomic_write_text(const fs::path& path, const std::string& text);

// Removes from `dir` the temporaries atomic_write left when its process was killed (kill -9, power
// loss) while writing a file whose name matches `names`: only those whose writer (the pid in the
// temporary's name) is gone and that are older than this process, so a live writer keeps its file.
// Says on stderr how many it removed (when any); returns that count. Call it where this process
// owns the folder, before it writes there (data parallelism: on the writing rank).
int remove_orphaned_temporaries(const fs::path& dir, const std::regex& names);

// Creates `dir` (and parents) and checks that a file can be written inside it.
void ensure_writable_dir(const fs::path& dir);

std::string read_text(const fs::path& path);
std::vector<uint8_t> read_bytes(const fs::path& path);

// $XDG_CACHE_HOME/retort, or ~/.cache/retort.
fs::path default_cache_dir();

}  // namespace retort
