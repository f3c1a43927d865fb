// The SentencePiece bridge module: the only code linked against libsentencepiece.
// See sentencepiece_bridge.h for why it is a separate module.
#include "sentencepiece_bridge.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <iostream>
#include <new>
#include <stdexcept>

namespace retort::spm {

namespace {

class SentenceList : public sentencepiece::SentenceIterator {
 public:
  explicit SentenceList(const std::vector<std::string_view>& s) : s_(s) { load(); }
  bool done() const override { return i_ >= s_.size(); }
  void Next() override {
    ++i_;
    load();
  }
  const std::string& value() const override { return current_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (i_ < s_.size()) current_.assign(s_[i_].data(), s_[i_].size());
  }
  const std::vector<std::string_view>& s_;
  size_t i_ = 0;
  std::string current_;
};

class ProcessorModel : public Model {
 public:
  explicit ProcessorModel(const std::string& serialized) {
    auto st = sp_.LoadFromSerializedProto(serialized);
    if (!st.ok()) throw std::runtime_error(st.ToString());
  }
  std::vector<Piece> pieces() const override {
    std::vector<Piece> out(sp_.GetPieceSize());
    for (int id = 0; id < static_cast<int>(out.size()); ++id) {
      out[id].text = sp_.IdToPiece(id);
      out[id].kind = sp_.IsByte(id) ? Piece::kByte
                     : (sp_.IsControl(id) || sp_.IsUnknown(id) || sp_.IsUnused(id))
                         ? Piece::kOther
                         : Piece::kNormal;
    }
    return out;
  }
  int piece_to_id(std::string_view piece) const override { return sp_.PieceToId(piece); }
  void encode(std::string_view text, std::vector<int>& ids) const override {
    ids.clear();
    auto st = sp_.Encode(text, &ids);
    if (!st.ok()) throw std::runtime_error(st.ToString());
  }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

class TrainerLibrary : public Library {
 public:
  std::string train(const std::unordered_map<std::string, std::string>& args,
                    const std::vector<std::string_view>& sentences) const override {
    SentenceList it(sentences);
    std::string model;
    auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
    if (!st.ok()) throw std::runtime_error(st.ToString());
    return model;
  }
  std::unique_ptr<Model> load(const std::string& serialized) const override {
    return std::make_unique<ProcessorModel>(serialized);
  }
};

// Under RTLD_DEEPBIND this module and libsentencepiece bind std::cout/cerr/clog to
// libstdc++'s own copies. When the program copy-relocated those objects (any program that
// names std::cerr does), only the program's copies are ever constructed, and SentencePiece's
// first log line would write through a zeroed stream and crash. Make libstdc++'s copies
// streams of their own onto the live streams' buffers.
void share_standard_streams() {
  struct Stream {
    std::ostream* here;
    const char* symbol;
  } streams[] = {{&std::cout, "_ZSt4cout"}, {&std::cerr, "_ZSt4cerr"}, {&std::clog, "_ZSt4clog"}};
  // The program's handle searches the program, then its libraries, in load order: the live
  // copy. (RTLD_DEFAULT would search this module's deep-bound scope first.)
  void* program = ::dlopen(nullptr, RTLD_NOW);
  if (!program) return;
  for (const auto& s : streams) {
    auto* live = static_cast<std::ostream*>(::dlsym(program, s.symbol));
    if (live && live != s.here) new (s.here) std::ostream(live->rdbuf());
  }
}

}  // namespace

}  // namespace retort::spm

extern "C" __attribute__((visibility("default"))) const retort::spm::Library*
retort_sentencepiece_library() {
  static const retort::spm::TrainerLibrary* library = [] {
    retort::spm::share_standard_streams();
    return new retort::spm::TrainerLibrary();
  }();
  return library;
}
