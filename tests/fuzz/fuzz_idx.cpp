// Fuzz target: IDX files (src/data/idx.cpp), plain or gzip-compressed, read through a file as
// datasets are. Accepted: the data holds exactly the product of the dimensions.
#include "fuzz_support.h"
#include "retort/data.h"
#include "retort/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace retort;
  const fuzz::fs::path path =
      fuzz::write_file(fuzz::scratch_dir() / "images-idx3-ubyte", fuzz::as_text(data, size));
  try {
    IdxArray a = read_idx(path);
    int64_t count = 1;
    for (int64_t d : a.dims) {
      FUZZ_CHECK(d >= 1);
      count *= d;
    }
    FUZZ_CHECK(!a.dims.empty() && a.dims.size() <= 4);
    FUZZ_CHECK(static_cast<size_t>(count) == a.data.size());
  } catch (const Error&) {
  }
  return 0;
}
