// Tokenizers: text <-> token ids. A byte-level one (256 symbols) and SentencePiece
// (BPE or unigram) trained in memory. Both round-trip any byte string exactly.
// No torch here: tokenizing is plain C++.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace retort {

// A tokenizer as bytes: what save() writes, for embedding in other files (GGUF metadata).
struct TokenizerFiles {
  std::string json;   // tokenizer.json
  std::string model;  // tokenizer.model (SentencePiece ModelProto); empty for byte
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;  // "byte" | "sentencepiece"
  virtual int64_t vocab_size() const = 0;
  // Any bytes in, ids in [0, vocab_size()) out; decode(encode(x)) == x for every x.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Ids out of [0, vocab_size()) -> Error naming the id and its position.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual std::string describe() const = 0;     // "byte (256)", "sentencepiece bpe (2048)"
  virtual std::string fingerprint() const = 0;  // 16 hex digits over everything that defines it
  // UTF-8 bytes of text each id stands for (for bits per byte); size vocab_size().
  // The sum over encode(x) is x.size() exactly.
  virtual const std::vector<int32_t>& token_bytes() const = 0;
  // Writes dir/tokenizer.json ({"kind":..., "vocab_size":..., ...}) and, for SentencePiece,
  // dir/tokenizer.model, each atomically. Creates dir.
  void save(const std::filesystem::path& dir) const;
  // The same content as save() writes, in memory.
  virtual TokenizerFiles files() const = 0;
};

// 256 symbols, id = byte value: exact round trip of any bytes.
std::shared_ptr<Tokenizer> make_byte_tokenizer();

struct SentencePieceOptions {
  std::string model_type = "bpe";  // bpe | unigram
  int64_t vocab_size = 2048;       // pieces, including <unk>, "\n" and the 256 byte fallbacks
  double character_coverage =
      1.0;              // share of characters that get their own piece; the rest fall back to bytes
  int64_t threads = 1;  // 1 keeps training deterministic
  int64_t sample_bytes =
      16 << 20;  // train on evenly spaced lines totalling about this much text (0 = all)
};

// Trains on `text` in memory (no temporary files); the same text and options give the same
// model, byte for byte. Lines are the training sentences; "\n" is a piece of its own.
// Settings that make the round trip exact: identity normalization, no extra-whitespace
// removal, no dummy prefix, byte fallback. Text SentencePiece would alter on its own (the
// character U+2581 "▁", which it uses for spaces, and bytes that are not valid UTF-8) is
// encoded as byte pieces by retort instead, so nothing is lost; such text just costs more ids.
// Errors (vocab too large for the text, bad model_type, ...) -> Error with the values.
std::shared_ptr<Tokenizer> train_sentencepiece(const std::string& text,
                                               const SentencePieceOptions& o);

// Reads what save() wrote; missing or corrupt files -> Error naming the file.
std::shared_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);
// The same from memory (files()); `origin` names where tokenizer.json came from in errors,
// `model_origin` where the SentencePiece model did (default: "inside <origin>").
std::shared_ptr<Tokenizer> tokenizer_from_files(const TokenizerFiles& files, const std::string& origin,
                                                std::string model_origin = "");

// Token ids as the strings an OpenAI-style API returns in `logprobs` (tokens, top_logprobs keys),
// and back. The string of an id is the text it decodes to when that is valid UTF-8 and no other
// id has claimed it (ids the tokenizer itself encodes that text to claim first, then lower ids);
// otherwise "bytes:" followed by \xNN escapes of its bytes (the convention
// of OpenAI's legacy completions), then "#<id>" if even that is taken. So every id has its own
// string, and a server and a client holding the same tokenizer agree on all of them.
class TokenStrings {
 public:
  explicit TokenStrings(const Tokenizer& tokenizer);
  const std::string& text(int32_t id) const;  // id out of range -> Error
  // -1 when no id has this string (another tokenizer's token).
  int32_t id(const std::string& text) const;
  // The UTF-8 bytes of an id as a list of byte values (chat logprobs' `bytes` field).
  const std::string& bytes(int32_t id) const;
  int64_t size() const { return int64_t(texts_.size()); }

 private:
  std::vector<std::string> texts_, bytes_;
  std::vector<std::pair<std::string, int32_t>> index_;  // sorted by text
};

}  // namespace retort
