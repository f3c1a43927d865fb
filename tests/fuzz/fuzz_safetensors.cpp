// Fuzz target: safetensors files (src/formats/safetensors_io.cpp): the 8-byte header length,
// the JSON header, every entry's dtype, shape and offsets, the data and its digest. Accepted:
// every tensor holds exactly the bytes its shape and dtype need.
#include <torch/torch.h>

#include "formats/safetensors_io.h"
#include "fuzz_support.h"
#include "retort/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace retort;
  const fuzz::fs::path path =
      fuzz::write_file(fuzz::scratch_dir() / "model.safetensors", fuzz::as_text(data, size));
  try {
    SafetensorsFile file = read_safetensors(path);
    size_t bytes = 0;
    for (const auto& [name, t] : file.tensors) {
      FUZZ_CHECK(t.defined() && t.device().is_cpu() && t.is_contiguous());
      bytes += t.numel() * t.element_size();
    }
    FUZZ_CHECK(bytes <= size);
  } catch (const Error&) {
  }
  return 0;
}
