// The top-k cache's on-disk format (topk_cache_format.h): meta.json, shard names, memory maps.
#include "teachers/topk_cache_format.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"

namespace retort {

int64_t TopkCacheInfo::shards() const {
  return windows_per_shard > 0 ? (windows + windows_per_shard - 1) / windows_per_shard : 0;
}

int64_t TopkCacheInfo::id_bytes() const { return vocab_size <= 65536 ? 2 : 4; }

namespace topk_format {

std::string shard_file(int64_t shard) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shard-%05lld.bin", static_cast<long long>(shard));
  return buf;
}

void check_info(const TopkCacheInfo& info) {
  if (info.key.empty()) fail("top-k cache: the key must not be empty");
  if (info.k < 1 || info.seq_len < 1 || info.windows < 1 || info.vocab_size < 1 ||
      info.windows_per_shard < 1)
    fail("top-k cache: k, seq_len, windows, vocab_size and windows_per_shard must be >= 1, got k=",
         info.k, " seq_len=", info.seq_len, " windows=", info.windows,
         " vocab_size=", info.vocab_size, " windows_per_shard=", info.windows_per_shard);
  if (info.vocab_size > (int64_t{1} << 31))
    fail("top-k cache: vocab_size ", info.vocab_size, " does not fit int32 ids");
}

bool same_shape(const TopkCacheInfo& a, const TopkCacheInfo& b) {
  return a.k == b.k && a.seq_len == b.seq_len && a.windows == b.windows &&
         a.vocab_size == b.vocab_size && a.windows_per_shard == b.windows_per_shard;
}

const char* id_dtype(const TopkCacheInfo& info) {
  return info.id_bytes() == 2 ? "uint16" : "int32";
}

nlohmann::json read_meta(const fs::path& dir) {
  std::ifstream in(dir / kMetaFile, std::ios::binary);
  if (!in) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

std::optional<TopkCacheInfo> info_of(const nlohmann::json& m) {
  if (m.is_discarded() || !m.is_object() || m.value("format", "") != kFormat ||
      m.value("version", 0) != kVersion)
    return std::nullopt;
  try {
    TopkCacheInfo info;
    info.key = m.at("key").get<std::string>();
    info.k = m.at("k").get<int64_t>();
    info.seq_len = m.at("seq_len").get<int64_t>();
    info.windows = m.at("windows").get<int64_t>();
    info.vocab_size = m.at("vocab_size").get<int64_t>();
    info.windows_per_shard = m.at("windows_per_shard").get<int64_t>();
    if (m.at("id_dtype").get<std::string>() != id_dtype(info)) return std::nullopt;
    return info;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// ---- memory maps -------------------------------------------------------------------------

MappedFile::MappedFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path.string(), ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat ", path.string(), ": ", std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail("cannot map ", path.string(), ": ", std::strerror(errno));
    }
    data_ = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping keeps the file
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<char*>(data_), size_);
}

std::string MappedFile::checksum() const { return Hasher().update(data_, size_).hex(); }

}  // namespace topk_format
}  // namespace retort
