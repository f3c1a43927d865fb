// Tokenizers: exact round trips (any bytes), SentencePiece training determinism,
// save/load, token_bytes and refusal of bad options and corrupt files.
#include "retort/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>

#include "retort/error.h"
#include "retort/text.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;

namespace {

// Genesis 1-3 (about 11 KB), as load_text_corpus("kjv") gives it.
const std::string& genesis() {
  static const std::string text = [] {
    TextCorpus kjv = load_text_corpus("kjv");
    return kjv.documents[0] + "\n\n" + kjv.documents[1] + "\n\n" + kjv.documents[2];
  }();
  return text;
}

std::shared_ptr<Tokenizer> small_sp(const std::string& type = "bpe", int64_t vocab = 400) {
  SentencePieceOptions o;
  o.model_type = type;
  o.vocab_size = vocab;
  return train_sentencepiece(genesis(), o);
}

// Hard cases for a round trip: what SentencePiece's normalizer or decoder would alter.
std::vector<std::string> awkward_texts() {
  std::vector<std::string> t = {
      "",
      "In the beginning",
      " leading space and trailing  ",
      "  runs   of    spaces\t\ttabs\r\nCRLF",
      "\n\nblank lines\n\n\n",
      std::string("nul \0 inside", 12),
      "ünïcødé 日本語 😀 — “quotes”",
      "a literal \xe2\x96\x81 lower one eighth block",
      "invalid utf-8: \xff\xfe \xc3 \xed\xa0\x80 \xf4\x90\x80\x80 \xe0\x80\xaf end",
      "digits 1234567890 and 3.14159",
      "\xef\xbb\xbf"
      "BOM first",
  };
  std::mt19937 rng(11);
  for (int k = 0; k < 20; ++k) {
    std::string s(1 + rng() % 200, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
    t.push_back(s);
  }
  return t;
}

std::string show(const std::string& s) {
  std::string out;
  for (unsigned char c : s)
    out += (c >= 0x20 && c < 0x7f) ? std::string(1, c) : cat("\\x", std::hex, int(c));
  return out;
}

}  // namespace

// ---- byte ---------------------------------------------------------------------------

TEST(ByteTokenizer, RoundTripsArbitraryBytesIncludingNulAndUtf8) {
  auto t = make_byte_tokenizer();
  EXPECT_EQ(t->kind(), "byte");
  EXPECT_EQ(t->vocab_size(), 256);
  EXPECT_EQ(t->describe(), "byte (256)");
  for (const auto& s : awkward_texts()) {
    auto ids = t->encode(s);
    ASSERT_EQ(ids.size(), s.size());
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 256) << id;
    EXPECT_EQ(t->decode(ids), s) << show(s);
  }
  std::string all(256, '\0');
  for (int i = 0; i < 256; ++i) all[i] = static_cast<char>(i);
  EXPECT_EQ(t->decode(t->encode(all)), all);
  EXPECT_EQ(t->token_bytes(), std::vector<int32_t>(256, 1));
}

TEST(ByteTokenizer, DecodeRefusesOutOfRangeIdsNamingThem) {
  auto t = make_byte_tokenizer();
  std::string msg = error_of([&] { t->decode({65, 256}); });
  EXPECT_NE(msg.find("256"), std::string::npos) << msg;
  EXPECT_NE(msg.find("position 1"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { t->decode({-1}); }).find("-1"), std::string::npos);
}

TEST(ByteTokenizer, SaveAndLoadGiveTheSameTokenizer) {
  TempDir tmp;
  auto t = make_byte_tokenizer();
  t->save(tmp.path());
  auto u = load_tokenizer(tmp.path());
  EXPECT_EQ(u->kind(), "byte");
  EXPECT_EQ(u->fingerprint(), t->fingerprint());
  EXPECT_FALSE(std::filesystem::exists(tmp / "tokenizer.model"));
}

// ---- SentencePiece -------------------------------------------------------------------

TEST(SentencePiece, TrainsBpeAndUnigramThatRoundTripAnyText) {
  for (std::string type : {"bpe", "unigram"}) {
    auto t = small_sp(type);
    EXPECT_EQ(t->kind(), "sentencepiece");
    EXPECT_EQ(t->vocab_size(), 400);
    EXPECT_EQ(t->describe(), cat("sentencepiece ", type, " (400)"));
    auto ids = t->encode(genesis());
    EXPECT_EQ(t->decode(ids), genesis());
    // Fewer ids than bytes: it learned something.
    EXPECT_LT(ids.size() * 2, genesis().size()) << type << ": " << ids.size() << " ids";
    for (const auto& s : awkward_texts()) {
      auto sids = t->encode(s);
      for (int32_t id : sids) ASSERT_TRUE(id >= 0 && id < 400) << id;
      EXPECT_EQ(t->decode(sids), s) << type << ": " << show(s);
    }
  }
}

TEST(SentencePiece, TrainingIsDeterministic) {
  for (std::string type : {"bpe", "unigram"}) {
    auto a = small_sp(type), b = small_sp(type);
    EXPECT_EQ(a->fingerprint(), b->fingerprint()) << type;
    EXPECT_EQ(a->encode(genesis()), b->encode(genesis())) << type;
  }
  EXPECT_NE(small_sp("bpe", 400)->fingerprint(), small_sp("bpe", 420)->fingerprint());
  EXPECT_NE(small_sp("bpe")->fingerprint(), small_sp("unigram")->fingerprint());
}

TEST(SentencePiece, SaveAndLoadGiveIdenticalIds) {
  TempDir tmp;
  auto t = small_sp();
  t->save(tmp.path());
  EXPECT_TRUE(std::filesystem::exists(tmp / "tokenizer.json"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "tokenizer.model"));
  auto u = load_tokenizer(tmp.path());
  EXPECT_EQ(u->fingerprint(), t->fingerprint());
  EXPECT_EQ(u->describe(), t->describe());
  EXPECT_EQ(u->token_bytes(), t->token_bytes());
  std::string text = genesis() + "\nAnd a text it never saw: Zebedee's quixotic jukebox, 1611.";
  EXPECT_EQ(u->encode(text), t->encode(text));
}

TEST(SentencePiece, TokenBytesSumToTheTextBytes) {
  auto t = small_sp();
  const auto& per = t->token_bytes();
  ASSERT_EQ(static_cast<int64_t>(per.size()), t->vocab_size());
  auto texts = awkward_texts();
  texts.push_back(genesis());
  for (const auto& s : texts) {
    int64_t sum = 0;
    for (int32_t id : t->encode(s)) sum += per[id];
    EXPECT_EQ(sum, static_cast<int64_t>(s.size())) << show(s.substr(0, 60));
  }
}

TEST(SentencePiece, CorruptOrMissingModelFileIsRefusedNamingIt) {
  TempDir tmp;
  small_sp()->save(tmp.path());
  std::string model = (tmp / "tokenizer.model").string();
  {
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  std::string msg = error_of([&] { load_tokenizer(tmp.path()); });
  EXPECT_NE(msg.find(model), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
  std::filesystem::remove(model);
  msg = error_of([&] { load_tokenizer(tmp.path()); });
  EXPECT_NE(msg.find(model), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  std::ofstream(tmp / "tokenizer.json") << "{\"kind\": ";
  msg = error_of([&] { load_tokenizer(tmp.path()); });
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
  TempDir empty;
  msg = error_of([&] { load_tokenizer(empty.path()); });
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
}

TEST(SentencePiece, BadOptionsAreRefusedWithTheirValues) {
  SentencePieceOptions o;
  o.model_type = "wordpiece";
  std::string msg = error_of([&] { train_sentencepiece(genesis(), o); });
  EXPECT_NE(msg.find("wordpiece"), std::string::npos) << msg;
  o = {};
  o.vocab_size = 100000;  // far more than 11 KB of text can give
  msg = error_of([&] { train_sentencepiece(genesis(), o); });
  EXPECT_NE(msg.find("100000"), std::string::npos) << msg;
  o.model_type = "unigram";
  msg = error_of([&] { train_sentencepiece(genesis(), o); });
  EXPECT_NE(msg.find("100000"), std::string::npos) << msg;
  o = {};
  o.vocab_size = 100;
  msg = error_of([&] { train_sentencepiece(genesis(), o); });
  EXPECT_NE(msg.find("100"), std::string::npos) << msg;
  o = {};
  EXPECT_NE(error_of([&] { train_sentencepiece("", o); }).find("empty"), std::string::npos);
}

TEST(SentencePiece, LongLinesAndSamplingStillTrainDeterministically) {
  // One 40 KB line (longer than SentencePiece takes) and a sample of a quarter of the text.
  std::string line;
  for (int i = 0; i < 4; ++i) line += genesis();
  for (auto& c : line)
    if (c == '\n') c = ' ';
  SentencePieceOptions o;
  o.vocab_size = 320;
  o.sample_bytes = static_cast<int64_t>(line.size() / 4);
  auto a = train_sentencepiece(line, o), b = train_sentencepiece(line, o);
  EXPECT_EQ(a->fingerprint(), b->fingerprint());
  EXPECT_EQ(a->decode(a->encode(line)), line);
}
