// tokenizer.ggml.* for llama.cpp, from retort's byte tokenizer or from the SentencePiece
// ModelProto (read with a small protobuf wire-format parser: no protobuf dependency here).
#include "gguf_vocab.h"

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "retort/error.h"

namespace retort::gguf {

namespace {

// llama.cpp's token types; SentencePiece's ModelProto.SentencePiece.Type uses the same numbers.
enum TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

struct Piece {
  std::string text;
  float score = 0;
  int32_t type = kNormal;  // the proto's default
};

// Protobuf wire format, just enough for ModelProto: varints, fixed32/64 and length-delimited
// fields; unknown fields are skipped.
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view bytes) : s_(bytes) {}
  bool done() const { return pos_ == s_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    fail("SentencePiece model: a varint is longer than 10 bytes at offset ", pos_);
  }
  std::string_view take(uint64_t n) {
    if (n > s_.size() - pos_)
      fail("SentencePiece model: a field of ", n, " bytes at offset ", pos_, " runs past its end (",
           s_.size(), ")");
    std::string_view out = s_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  // Reads the next field: its number and wire type; the caller reads or skips the value.
  std::pair<uint64_t, uint32_t> tag() {
    uint64_t t = varint();
    return {t >> 3, static_cast<uint32_t>(t & 7)};
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        take(8);
        break;
      case 2:
        take(varint());
        break;
      case 5:
        take(4);
        break;
      default:
        fail("SentencePiece model: unsupported protobuf wire type ", wire, " at offset ", pos_);
    }
  }

 private:
  uint8_t byte() { return static_cast<uint8_t>(take(1)[0]); }
  std::string_view s_;
  size_t pos_ = 0;
};

// ModelProto field 1: repeated SentencePiece {1: piece, 2: score (float), 3: type (enum)}.
std::vector<Piece> sentencepiece_pieces(std::string_view model) {
  std::vector<Piece> pieces;
  ProtoReader proto(model);
  while (!proto.done()) {
    auto [field, wire] = proto.tag();
    if (field != 1 || wire != 2) {
      proto.skip(wire);
      continue;
    }
    ProtoReader piece(proto.take(proto.varint()));
    Piece p;
    while (!piece.done()) {
      auto [f, w] = piece.tag();
      if (f == 1 && w == 2) {
        p.text = std::string(piece.take(piece.varint()));
      } else if (f == 2 && w == 5) {
        std::memcpy(&p.score, piece.take(4).data(), 4);
      } else if (f == 3 && w == 0) {
        p.type = static_cast<int32_t>(piece.varint());
      } else {
        piece.skip(w);
      }
    }
    pieces.push_back(std::move(p));
  }
  return pieces;
}

std::string byte_piece(int b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}

}  // namespace

void add_llama_vocab(Writer& out, const Tokenizer& tokenizer) {
  std::vector<Piece> pieces;
  std::string model = "llama";
  if (tokenizer.kind() == "byte") {
    for (int b = 0; b < 256; ++b) pieces.push_back({byte_piece(b), 0.0f, kByte});
    pieces[' '] = {"\xe2\x96\x81", 0.0f, kNormal};  // "▁"
  } else if (tokenizer.kind() == "sentencepiece") {
    TokenizerFiles files = tokenizer.files();
    pieces = sentencepiece_pieces(files.model);
    if (nlohmann::json::parse(files.json).value("model_type", "") == "unigram") model = "t5";
  } else {
    fail("GGUF export: no llama.cpp vocabulary for the ", tokenizer.describe(), " tokenizer");
  }
  if (static_cast<int64_t>(pieces.size()) != tokenizer.vocab_size())
    fail("GGUF export: the ", tokenizer.describe(), " tokenizer's model holds ", pieces.size(),
         " pieces");

  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  int32_t unknown = -1, nul = -1;
  for (size_t id = 0; id < pieces.size(); ++id) {
    tokens.push_back(pieces[id].text);
    scores.push_back(pieces[id].score);
    types.push_back(pieces[id].type);
    if (pieces[id].type == kUnknown && unknown < 0) unknown = static_cast<int32_t>(id);
    if (pieces[id].type == kByte && pieces[id].text == "<0x00>") nul = static_cast<int32_t>(id);
  }
  if (nul < 0)
    fail("GGUF export: the ", tokenizer.describe(), " tokenizer has no byte piece <0x00>");
  out.add_string("tokenizer.ggml.model", model);
  out.add_strings("tokenizer.ggml.tokens", tokens);
  out.add_f32s("tokenizer.ggml.scores", scores);
  out.add_i32s("tokenizer.ggml.token_type", types);
  // retort's language models know no BOS or EOS; llama.cpp wants ids for them all the same.
  // The NUL byte stands in: text never holds it, so it never ends a generation early.
  out.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(nul));
  out.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(nul));
  out.add_u32("tokenizer.ggml.unknown_token_id",
              static_cast<uint32_t>(unknown >= 0 ? unknown : nul));
  out.add_bool("tokenizer.ggml.add_bos_token", false);
  out.add_bool("tokenizer.ggml.add_eos_token", false);
  out.add_bool("tokenizer.ggml.add_space_prefix", false);
  out.add_bool("tokenizer.ggml.remove_extra_whitespaces", false);  // read by "t5"
}

}  // namespace retort::gguf
