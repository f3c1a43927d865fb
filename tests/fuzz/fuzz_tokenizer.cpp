// Fuzz target: tokenizer files (src/data/tokenizer.cpp, sentencepiece_tokenizer.cpp):
// tokenizer.json, then (split by fuzz::kPartSeparator) a SentencePiece tokenizer.model, read as
// a folder (load_tokenizer) and from memory (tokenizer_from_files, as GGUF files and API
// endpoints hand them over). A tokenizer.json whose fingerprint is "fuzz" gets the model's real
// fingerprint, so that mutated models reach SentencePiece and retort's reading of its pieces.
// Accepted: decode(encode(x)) == x, and every id of encode is in [0, vocab_size).
#include <nlohmann/json.hpp>

#include "data/tokenizer_kinds.h"
#include "fuzz_support.h"
#include "retort/error.h"
#include "retort/tokenizer.h"

namespace {

void check_round_trip(const retort::Tokenizer& t, std::string_view text) {
  std::vector<int32_t> ids = t.encode(text);
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < t.vocab_size());
  FUZZ_CHECK(t.decode(ids) == text);
  FUZZ_CHECK(static_cast<int64_t>(t.token_bytes().size()) == t.vocab_size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace retort;
  std::vector<std::string_view> parts = fuzz::split_parts(fuzz::as_text(data, size));
  TokenizerFiles files{std::string(parts[0]), parts.size() > 1 ? std::string(parts[1]) : ""};
  nlohmann::json j = nlohmann::json::parse(files.json, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("fingerprint") && j["fingerprint"] == "fuzz") {
    j["fingerprint"] = tokenizer_fingerprint("sentencepiece", files.model);
    files.json = j.dump();
  }

  const fuzz::fs::path dir = fuzz::fresh_scratch_dir();
  fuzz::write_file(dir / "tokenizer.json", files.json);
  if (parts.size() > 1) fuzz::write_file(dir / "tokenizer.model", files.model);
  try {
    std::shared_ptr<Tokenizer> t = load_tokenizer(dir);
    check_round_trip(*t, "And God said, Let there be light\n\xe2\x96\x81 \xff\xfe");
    check_round_trip(*t, files.json);
  } catch (const Error&) {
  }
  try {
    std::shared_ptr<Tokenizer> t = tokenizer_from_files(files, "fuzz input");
    check_round_trip(*t, files.model.substr(0, 256));
  } catch (const Error&) {
  }
  return 0;
}
