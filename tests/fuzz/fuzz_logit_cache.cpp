// Fuzz target: the dense logit cache file (src/teachers/logit_cache_file.cpp): magic, header
// length, JSON header, float32 data and its checksum. The reader never throws: a file that is
// not whole is refused with a reason, and the teacher's logits are computed again. Accepted:
// the logits hold exactly the bytes after the header.
#include <torch/torch.h>

#include "fuzz_support.h"
#include "teachers/logit_cache_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace retort;
  const fuzz::fs::path path =
      fuzz::write_file(fuzz::scratch_dir() / "logits-fuzz.bin", fuzz::as_text(data, size));
  std::string why;
  torch::Tensor logits = read_logit_cache_file(path, "fuzz", &why);
  if (logits.defined()) {
    FUZZ_CHECK(why.empty());
    FUZZ_CHECK(logits.scalar_type() == torch::kFloat32 && logits.is_contiguous());
    FUZZ_CHECK(static_cast<size_t>(logits.numel()) * 4 <= size);
  } else {
    FUZZ_CHECK(!why.empty());
  }
  return 0;
}
