// Fuzz target: GGUF files (src/formats/gguf_io.cpp): the header, every metadata value and
// tensor info, then what import_gguf reads from an accepted file (retort's keys, every F32/F16
// tensor, the tensor digest). Accepted: tensors come back with the shape their info gives.
#include <torch/torch.h>

#include "formats/gguf_io.h"
#include "fuzz_support.h"
#include "retort/error.h"
#include "retort/hash.h"

namespace {

// Runs one accessor; a refusal (a missing key, another type) is an answer like any other.
template <typename F>
void quietly(F&& read) {
  try {
    read();
  } catch (const retort::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace retort;
  const fuzz::fs::path path =
      fuzz::write_file(fuzz::scratch_dir() / "model.gguf", fuzz::as_text(data, size));
  try {
    gguf::Reader r(path);
    for (const char* key : {"retort.model_spec", "retort.tokenizer.json", "retort.digest",
                            "general.architecture", "tokenizer.ggml.model"})
      quietly([&] { r.string(key); });
    for (const char* key : {"retort.tokenizer.model", "tokenizer.ggml.token_type"})
      quietly([&] { r.bytes(key); });
    for (const char* key : {"general.alignment", "llama.vocab_size", "llama.block_count"})
      quietly([&] { r.u32(key); });
    quietly([&] { r.f32("llama.attention.layer_norm_rms_epsilon"); });
    Hasher h;
    r.hash_tensors(h);
    for (const auto& [name, info] : r.tensors()) {
      quietly([&, &name = name, &info = info] {
        torch::Tensor t = r.tensor(name);
        FUZZ_CHECK(t.dim() == static_cast<int64_t>(info.dims.size()));
        for (int64_t d = 0; d < t.dim(); ++d) FUZZ_CHECK(t.size(d) == info.dims[t.dim() - 1 - d]);
      });
    }
  } catch (const Error&) {
  }
  return 0;
}
