// IDX reader: big-endian header (0, 0, type, ndims), ndims int32 sizes, raw data.
#include <zlib.h>

#include "retort/data.h"
#include "retort/error.h"

namespace retort {

namespace {

struct GzFile {
  gzFile f = nullptr;
  ~GzFile() {
    if (f) gzclose(f);
  }
};

// Reads exactly n bytes or reports what was there.
size_t read_some(gzFile f, void* buf, size_t n, const std::filesystem::path& path) {
  size_t total = 0;
  auto* p = static_cast<char*>(buf);
  while (total < n) {
    unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - total, 1u << 30));
    int got = gzread(f, p + total, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      fail("IDX file ", path, " is corrupt: ", msg ? msg : "read error");
    }
    if (got == 0) break;
    total += static_cast<size_t>(got);
  }
  return total;
}

}  // namespace

IdxArray read_idx(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) fail("IDX file ", path, " does not exist");
  GzFile g;
  g.f = gzopen(path.c_str(), "rb");  // reads plain files transparently too
  if (!g.f) fail("IDX file ", path, " cannot be opened");
  unsigned char magic[4];
  if (read_some(g.f, magic, 4, path) != 4) fail("IDX file ", path, " is truncated: no header");
  if (magic[0] != 0 || magic[1] != 0)
    fail("IDX file ", path, " has a wrong magic number (first bytes ", int(magic[0]), " ", int(magic[1]),
         ", expected 0 0): not an IDX file");
  if (magic[2] != 0x08)
    fail("IDX file ", path, " has element type 0x", std::hex, int(magic[2]), std::dec,
         "; only unsigned bytes (0x08) are supported");
  int ndims = magic[3];
  if (ndims < 1 || ndims > 4) fail("IDX file ", path, " has ", ndims, " dimensions; expected 1 to 4");
  IdxArray out;
  constexpr int64_t kMaxBytes = int64_t(1) << 34;
  int64_t count = 1;
  for (int i = 0; i < ndims; ++i) {
    unsigned char b[4];
    if (read_some(g.f, b, 4, path) != 4) fail("IDX file ", path, " is truncated inside its header");
    int64_t d = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | b[3];
    if (d <= 0 || d > (1 << 28)) fail("IDX file ", path, " has an implausible dimension ", d);
    out.dims.push_back(d);
    count *= d;  // <= 2^34 * 2^28: checked below before the next product
    if (count > kMaxBytes) fail("IDX file ", path, " declares more than ", kMaxBytes, " bytes; too large");
  }
  // The header is only a claim: memory grows with the data actually there (a 20-byte file may
  // declare 16 GiB), in chunks of at most 64 MiB.
  size_t got = 0;
  while (got < static_cast<size_t>(count)) {
    const size_t chunk = std::min<size_t>(static_cast<size_t>(count) - got, size_t(64) << 20);
    out.data.resize(got + chunk);
    const size_t n = read_some(g.f, out.data.data() + got, chunk, path);
    got += n;
    if (n < chunk) break;
  }
  if (got != static_cast<size_t>(count))
    fail("IDX file ", path, " is truncated: header declares ", count, " bytes of data, found ", got);
  unsigned char extra;
  if (read_some(g.f, &extra, 1, path) != 0)
    fail("IDX file ", path, " has trailing bytes after the ", count, " declared by its header");
  return out;
}

}  // namespace retort
