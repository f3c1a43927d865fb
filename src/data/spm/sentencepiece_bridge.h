// The interface between retort and its SentencePiece bridge (libretort_sentencepiece.so).
//
// Why a bridge: Debian's libsentencepiece carries its own copy of protobuf 3.14 and exports
// its symbols; libtorch loads the system protobuf 3.21, and in one symbol namespace the two
// crash each other while the program starts. So SentencePiece is linked only into a small
// module that tokenizer.cpp opens with dlopen(RTLD_LOCAL | RTLD_DEEPBIND): the module sees
// its own protobuf, the rest of the process never sees it. Only virtual calls cross (no
// symbol lookups), and failures cross as std::runtime_error.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace retort::spm {

struct Piece {
  enum Kind { kNormal, kByte, kOther };  // kOther: <unk>, control and unused pieces
  std::string text;                      // as SentencePiece stores it ("▁the", "<0x0A>", "\n")
  Kind kind = kNormal;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::vector<Piece> pieces() const = 0;  // indexed by id
  virtual int piece_to_id(std::string_view piece) const = 0;
  // Appends the ids of `text` to `ids` (cleared first).
  virtual void encode(std::string_view text, std::vector<int>& ids) const = 0;
};

class Library {
 public:
  virtual ~Library() = default;
  // SentencePieceTrainer::Train with `args` (flag name -> value) on `sentences`; returns the
  // serialized ModelProto.
  virtual std::string train(const std::unordered_map<std::string, std::string>& args,
                            const std::vector<std::string_view>& sentences) const = 0;
  virtual std::unique_ptr<Model> load(const std::string& serialized) const = 0;
};

}  // namespace retort::spm

// The one symbol the module exports; returns a process-lifetime object.
extern "C" const retort::spm::Library* retort_sentencepiece_library();
