// The SentencePiece tokenizer (BPE or unigram, through the dlopen'd bridge), its training, and
// the text it must never see as is (retort/tokenizer.h says why). Not here: the byte tokenizer and
// tokenizer files (tokenizer.cpp).
#include <dlfcn.h>

#include <array>
#include <cstdlib>
#include <unordered_map>

#include "data/spm/sentencepiece_bridge.h"
#include "data/tokenizer_kinds.h"
#include "retort/error.h"
#include "retort/fs.h"

namespace retort {

namespace {

// ---- what SentencePiece may see ---------------------------------------------------

// U+2581, the mark SentencePiece writes for a space: a literal one would decode as a space.
constexpr std::string_view kSpaceMark = "\xe2\x96\x81";

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms,
// no surrogates, at most U+10FFFF), or 0 when none starts there.
size_t utf8_length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Cuts text into runs that SentencePiece takes unchanged (valid UTF-8 without "\n" or
// U+2581), newlines, and single bytes it would alter (invalid UTF-8, the bytes of U+2581).
template <typename OnRun, typename OnNewline, typename OnByte>
void split_for_sentencepiece(std::string_view s, OnRun on_run, OnNewline on_newline,
                             OnByte on_byte) {
  size_t start = 0, i = 0;
  auto flush = [&] {
    if (i > start) on_run(s.substr(start, i - start));
  };
  while (i < s.size()) {
    if (s[i] == '\n') {
      flush();
      on_newline();
      start = ++i;
      continue;
    }
    size_t n = utf8_length(s, i);
    if (n == 0 || (n == 3 && s.compare(i, 3, kSpaceMark) == 0)) {
      flush();
      size_t bad = n == 0 ? 1 : 3;
      for (size_t k = 0; k < bad; ++k) on_byte(static_cast<unsigned char>(s[i + k]));
      start = i += bad;
      continue;
    }
    i += n;
  }
  flush();
}

// ---- the SentencePiece bridge ------------------------------------------------------

// RTLD_DEEPBIND keeps the bridge's bundled protobuf apart from libtorch's. AddressSanitizer
// refuses it (google/sanitizers#611) and stops the process; sanitized builds that load the bridge
// (the fuzz targets, which do not link libtorch) open it without. make test-asan's build has
// libtorch's protobuf in the process, so it keeps RTLD_DEEPBIND: its bridge is linked with ASan and
// its executables let that one dlopen through (cmake/sanitize.cmake, sanitize_defaults.cpp.in).
#if defined(RETORT_SANITIZE_DEEPBIND)
constexpr int kBridgeBinding = RTLD_DEEPBIND;
#elif defined(__SANITIZE_ADDRESS__)
constexpr int kBridgeBinding = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kBridgeBinding = 0;
#else
constexpr int kBridgeBinding = RTLD_DEEPBIND;
#endif
#else
constexpr int kBridgeBinding = RTLD_DEEPBIND;
#endif

// Opens libretort_sentencepiece.so (see data/spm/sentencepiece_bridge.h for why) from, in
// order: $RETORT_SENTENCEPIECE_BRIDGE, next to the running program or one folder up, and
// where the build put it.
const spm::Library& sentencepiece_library() {
  static const spm::Library* library = [] {
    const char* name = "libretort_sentencepiece.so";
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("RETORT_SENTENCEPIECE_BRIDGE")) candidates.emplace_back(env);
    std::error_code ec;
    fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
    if (!ec) {
      candidates.push_back(exe_dir / name);
      candidates.push_back(exe_dir.parent_path() / name);
    }
#ifdef RETORT_SENTENCEPIECE_BRIDGE
    candidates.emplace_back(RETORT_SENTENCEPIECE_BRIDGE);
#endif
    std::string tried;
    for (const auto& p : candidates) {
      if (!fs::exists(p, ec)) {
        tried += cat(" ", p, " (missing)");
        continue;
      }
      void* handle = ::dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL | kBridgeBinding);
      const char* err = handle ? nullptr : ::dlerror();
      auto entry = handle ? reinterpret_cast<const spm::Library* (*)()>(
                                ::dlsym(handle, "retort_sentencepiece_library"))
                          : nullptr;
      if (entry) return entry();
      tried += cat(" ", p, " (", err ? err : "no retort_sentencepiece_library in it", ")");
    }
    fail("cannot load retort's SentencePiece bridge ", name, "; tried:", tried,
         ". Build the retort_sentencepiece target, or set RETORT_SENTENCEPIECE_BRIDGE to its path");
    return static_cast<const spm::Library*>(nullptr);
  }();
  return *library;
}

// ---- SentencePiece tokenizer --------------------------------------------------------

class SentencePieceTokenizer : public Tokenizer {
 public:
  // `serialized`: a ModelProto as SentencePiece writes it; `origin` names it in errors.
  SentencePieceTokenizer(std::string serialized, std::string model_type, const std::string& origin)
      : model_(std::move(serialized)), model_type_(std::move(model_type)) {
    std::vector<spm::Piece> pieces;
    try {
      sp_ = sentencepiece_library().load(model_);
      pieces = sp_->pieces();
    } catch (const std::runtime_error& e) {
      if (dynamic_cast<const Error*>(&e)) throw;
      fail("SentencePiece model ", origin, " is corrupt: ", e.what());
    }
    int64_t n = static_cast<int64_t>(pieces.size());
    surfaces_.resize(n);
    token_bytes_.resize(n);
    byte_id_.fill(-1);
    for (int id = 0; id < n; ++id) {
      const std::string& piece = pieces[id].text;
      std::string surface;
      if (pieces[id].kind == spm::Piece::kByte) {
        int value = std::stoi(piece.substr(3, 2), nullptr, 16);  // "<0xAB>"
        surface.assign(1, static_cast<char>(value));
        byte_id_[value] = id;
      } else if (pieces[id].kind == spm::Piece::kNormal) {
        for (size_t p = 0; p < piece.size();) {
          if (piece.compare(p, 3, kSpaceMark) == 0) {
            surface += ' ';
            p += 3;
          } else {
            surface += piece[p++];
          }
        }
      }
      surfaces_[id] = surface;
      token_bytes_[id] = static_cast<int32_t>(surface.size());
    }
    for (int b = 0; b < 256; ++b)
      if (byte_id_[b] < 0)
        fail("SentencePiece model ", origin, " has no byte piece for ", b,
             " (not trained with byte_fallback)");
    newline_id_ = sp_->piece_to_id("\n");
    if (newline_id_ < 0 || newline_id_ >= n || surfaces_[newline_id_] != "\n")
      newline_id_ = byte_id_['\n'];
    fingerprint_ = tokenizer_fingerprint("sentencepiece", model_);
  }

  std::string kind() const override { return "sentencepiece"; }
  int64_t vocab_size() const override { return static_cast<int64_t>(surfaces_.size()); }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 16);
    std::vector<int> run_ids;
    split_for_sentencepiece(
        text,
        [&](std::string_view run) {
          try {
            sp_->encode(run, run_ids);
          } catch (const std::runtime_error& e) {
            fail("SentencePiece could not encode ", run.size(), " bytes: ", e.what());
          }
          ids.insert(ids.end(), run_ids.begin(), run_ids.end());
        },
        [&] { ids.push_back(newline_id_); }, [&](unsigned char b) { ids.push_back(byte_id_[b]); });
    return ids;
  }

  // Concatenates the pieces' text. SentencePiece's own Decode would turn invalid UTF-8 from
  // byte pieces into U+FFFD; this keeps the bytes.
  std::string decode(const std::vector<int32_t>& ids) const override {
    check_token_ids(ids, vocab_size());
    std::string out;
    for (int32_t id : ids) out += surfaces_[id];
    return out;
  }

  std::string describe() const override {
    return cat("sentencepiece ", model_type_, " (", vocab_size(), ")");
  }
  std::string fingerprint() const override { return fingerprint_; }
  const std::vector<int32_t>& token_bytes() const override { return token_bytes_; }

  TokenizerFiles files() const override {
    return {tokenizer_json({{"kind", "sentencepiece"},
                            {"model_type", model_type_},
                            {"vocab_size", vocab_size()},
                            {"model_file", "tokenizer.model"},
                            {"model_bytes", model_.size()},
                            {"fingerprint", fingerprint_}}),
            model_};
  }

 private:
  std::string model_;  // the serialized ModelProto, kept byte for byte
  std::string model_type_;
  std::unique_ptr<spm::Model> sp_;
  std::vector<std::string> surfaces_;  // the text each id stands for
  std::vector<int32_t> token_bytes_;
  std::array<int32_t, 256> byte_id_{};
  int32_t newline_id_ = 0;
  std::string fingerprint_;
};

// ---- training -------------------------------------------------------------------------

// Training sentences longer than this are cut (at a space when there is one): SentencePiece
// skips longer ones, and no piece is longer than 16 characters anyway.
constexpr size_t kMaxSentenceBytes = 4096;

std::vector<std::string_view> training_sentences(const std::string& text, int64_t sample_bytes) {
  std::vector<std::string_view> all;
  size_t total = 0;
  auto add = [&](std::string_view run) {
    while (run.size() > kMaxSentenceBytes) {
      size_t cut = run.rfind(' ', kMaxSentenceBytes);
      if (cut == 0 || cut == std::string_view::npos) {
        cut = kMaxSentenceBytes;
        while (cut > 0 && (static_cast<unsigned char>(run[cut]) & 0xC0) == 0x80)
          --cut;  // a character boundary
      }
      all.push_back(run.substr(0, cut));
      total += cut;
      run.remove_prefix(cut);
    }
    all.push_back(run);
    total += run.size();
  };
  split_for_sentencepiece(
      text, add, [] {}, [](unsigned char) {});
  if (sample_bytes <= 0 || total <= static_cast<size_t>(sample_bytes)) return all;
  // Every k-th sentence: deterministic, and spread over the whole text.
  size_t k = (total + sample_bytes - 1) / sample_bytes;
  std::vector<std::string_view> sample;
  for (size_t i = 0; i < all.size(); i += k) sample.push_back(all[i]);
  return sample;
}

}  // namespace

// ---- public API -----------------------------------------------------------------------

std::shared_ptr<Tokenizer> train_sentencepiece(const std::string& text,
                                               const SentencePieceOptions& o) {
  if (o.model_type != "bpe" && o.model_type != "unigram")
    fail("unknown SentencePiece model_type \"", o.model_type, "\"; known: bpe, unigram");
  if (o.vocab_size < 259)
    fail(
        "SentencePiece vocab_size must be >= 259 (<unk>, \"\\n\" and 256 byte pieces come first), "
        "got ",
        o.vocab_size);
  if (!(o.character_coverage > 0 && o.character_coverage <= 1))
    fail("SentencePiece character_coverage must be in (0, 1], got ", o.character_coverage);
  if (o.threads < 1) fail("SentencePiece threads must be >= 1, got ", o.threads);
  std::vector<std::string_view> sentences = training_sentences(text, o.sample_bytes);
  if (sentences.empty()) fail("cannot train SentencePiece on empty text (", text.size(), " bytes)");

  std::unordered_map<std::string, std::string> args = {
      {"model_type", o.model_type},
      {"vocab_size", cat(o.vocab_size)},
      {"character_coverage", cat(o.character_coverage)},
      {"num_threads", cat(o.threads)},
      // Exact round trip: no normalization, spaces kept as they are, bytes for the rest.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"user_defined_symbols", "\n"},
      // <unk> at 0 (SentencePiece needs it); no <s>, </s>, <pad>: language models here don't use
      // them.
      {"unk_id", "0"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"pad_id", "-1"},
      // The sample is ours (deterministic); SentencePiece must not draw its own.
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", cat(kMaxSentenceBytes)},
      {"minloglevel", "1"},
  };
  std::string model;
  try {
    model = sentencepiece_library().train(args, sentences);
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    fail("SentencePiece training failed (model_type ", o.model_type, ", vocab_size ", o.vocab_size,
         ", ", text.size(), " bytes of text in ", sentences.size(), " sentences): ", e.what());
  }
  auto t =
      std::make_shared<SentencePieceTokenizer>(std::move(model), o.model_type, "(just trained)");
  if (t->vocab_size() != o.vocab_size)
    fail("SentencePiece made ", t->vocab_size(), " pieces, asked for ", o.vocab_size);
  return t;
}

std::shared_ptr<Tokenizer> make_sentencepiece_tokenizer(std::string serialized, std::string model_type,
                                                        const std::string& origin) {
  return std::make_shared<SentencePieceTokenizer>(std::move(serialized), std::move(model_type), origin);
}

}  // namespace retort
