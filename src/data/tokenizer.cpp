// Tokenizers: the byte-level one, and tokenizer files (tokenizer.json + tokenizer.model) saved and
// read back. The SentencePiece tokenizer and its training are sentencepiece_tokenizer.cpp.
// Not here: corpora and token windows (text_corpus.cpp, token_batcher.cpp).
#include "retort/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/tokenizer_kinds.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/json_depth.h"

namespace retort {

// ---- shared by the kinds (tokenizer_kinds.h) ------------------------------------------

std::string tokenizer_fingerprint(std::string_view kind, std::string_view payload) {
  Hasher h;
  h.update(kind).update(std::string_view("\0", 1)).update(payload);
  return h.hex();
}

void check_token_ids(const std::vector<int32_t>& ids, int64_t vocab) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      fail("token id ", ids[i], " at position ", i, " is out of range [0, ", vocab, ")");
}

std::string tokenizer_json(const nlohmann::json& j) { return j.dump(2) + "\n"; }

namespace {

using nlohmann::json;

// ---- byte tokenizer --------------------------------------------------------------

class ByteTokenizer : public Tokenizer {
 public:
  ByteTokenizer() : token_bytes_(256, 1) {}
  std::string kind() const override { return "byte"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    check_token_ids(ids, 256);
    std::string out(ids.size(), '\0');
    for (size_t i = 0; i < ids.size(); ++i) out[i] = static_cast<char>(ids[i]);
    return out;
  }
  std::string describe() const override { return "byte (256)"; }
  std::string fingerprint() const override { return tokenizer_fingerprint("byte", "256"); }
  const std::vector<int32_t>& token_bytes() const override { return token_bytes_; }
  TokenizerFiles files() const override {
    return {tokenizer_json({{"kind", "byte"}, {"vocab_size", 256}, {"fingerprint", fingerprint()}}), ""};
  }

 private:
  std::vector<int32_t> token_bytes_;
};

}  // namespace

// ---- public API -----------------------------------------------------------------------

std::shared_ptr<Tokenizer> make_byte_tokenizer() { return std::make_shared<ByteTokenizer>(); }

void Tokenizer::save(const fs::path& dir) const {
  TokenizerFiles f = files();
  // The model first: tokenizer.json, written last, is what makes the folder a tokenizer.
  if (!f.model.empty()) {
    atomic_write(dir / "tokenizer.model", [&](const fs::path& tmp) {
      std::ofstream out(tmp, std::ios::binary);
      out.write(f.model.data(), static_cast<std::streamsize>(f.model.size()));
      out.close();
      if (!out) fail("cannot write ", tmp);
    });
  }
  atomic_write_text(dir / "tokenizer.json", f.json);
}

std::shared_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  fs::path json_path = dir / "tokenizer.json";
  if (!fs::exists(json_path)) fail("no tokenizer in ", dir, ": ", json_path, " is missing");
  TokenizerFiles files{read_text(json_path), ""};
  json j = json_nests_deeper_than(files.json)
               ? json(json::value_t::discarded)  // refused below, by tokenizer_from_files
               : json::parse(files.json, nullptr, /*allow_exceptions=*/false);
  fs::path model_path;
  if (j.is_object() && j.contains("kind") && j["kind"] == "sentencepiece") {
    // The model sits beside tokenizer.json: a name, not a path (a tokenizer.json from elsewhere
    // must not make retort read /dev/zero or another folder's files).
    std::string name = "tokenizer.model";
    if (j.contains("model_file")) name = j["model_file"].is_string() ? j["model_file"].get<std::string>() : "";
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      fail("tokenizer file ", json_path, " names model_file \"", name,
           "\"; expected the name of a file beside it, e.g. \"tokenizer.model\"");
    model_path = dir / name;
    std::error_code ec;  // a name the file system refuses (too long, ...) is an answer, not an exception
    const fs::file_status st = fs::status(model_path, ec);  // libstdc++ sets ec for "not found" too
    if (!fs::is_regular_file(st))
      fail("SentencePiece model ", model_path, " is ",
           ec && st.type() != fs::file_type::not_found ? "unreadable (" + ec.message() + ")" : "missing",
           " (named by ", json_path, ")");
    files.model = read_text(model_path);
  }
  return tokenizer_from_files(files, json_path.string(), model_path.string());
}

std::shared_ptr<Tokenizer> tokenizer_from_files(const TokenizerFiles& files, const std::string& origin,
                                                std::string model_origin) {
  if (model_origin.empty()) model_origin = "inside " + origin;
  json j;
  std::string kind;
  int64_t vocab = 0;
  if (json_nests_deeper_than(files.json))
    fail("tokenizer file ", origin, " is corrupt: it nests more than ", kMaxJsonDepth, " levels deep");
  try {
    j = json::parse(files.json);
    kind = j.at("kind").get<std::string>();
    const json& v = j.at("vocab_size");
    // get<int64_t> of a float converts it unchecked (1e51 is undefined behaviour).
    if (!v.is_number_integer()) fail("tokenizer file ", origin, " has vocab_size ", v.dump(), ", expected an integer");
    vocab = v.get<int64_t>();
  } catch (const json::exception& e) {
    fail("tokenizer file ", origin, " is corrupt: ", e.what());
  }
  std::shared_ptr<Tokenizer> t;
  if (kind == "byte") {
    t = make_byte_tokenizer();
  } else if (kind == "sentencepiece") {
    std::string model_type, expected;
    try {
      model_type = j.at("model_type").get<std::string>();
      expected = j.at("fingerprint").get<std::string>();
    } catch (const json::exception& e) {
      fail("tokenizer file ", origin, " is corrupt: ", e.what());
    }
    std::string found = tokenizer_fingerprint("sentencepiece", files.model);
    if (found != expected)
      fail("SentencePiece model ", model_origin, " is corrupt or replaced: fingerprint ", found, ", ", origin, " expects ", expected, " (",
           files.model.size(), " bytes)");
    t = make_sentencepiece_tokenizer(files.model, model_type, model_origin);
  } else {
    fail("tokenizer file ", origin, " has unknown kind \"", kind, "\"; known: byte, sentencepiece");
  }
  if (t->vocab_size() != vocab)
    fail("tokenizer file ", origin, " says vocab_size ", vocab, ", the tokenizer has ", t->vocab_size());
  return t;
}

}  // namespace retort
