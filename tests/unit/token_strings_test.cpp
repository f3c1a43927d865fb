// TokenStrings: token ids <-> the strings an API shows (logprobs), unique per tokenizer, for the
// byte tokenizer and SentencePiece.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "retort/tokenizer.h"
#include "guard_fixture.h"
#include "retort/guard.h"

namespace retort {
namespace {

using namespace guard_testing;

// ---- TokenStrings --------------------------------------------------------------------

TEST(TokenStrings, ByteTokenizerStringsRoundTripAndAreDistinct) {
  const auto tok = make_byte_tokenizer();
  const TokenStrings strings(*tok);
  ASSERT_EQ(strings.size(), 256);
  std::set<std::string> seen;
  for (int32_t id = 0; id < 256; ++id) {
    const std::string& text = strings.text(id);
    EXPECT_EQ(strings.id(text), id) << "'" << text << "'";
    EXPECT_EQ(strings.bytes(id), std::string(1, static_cast<char>(id)));
    seen.insert(text);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(strings.text('a'), "a");
  EXPECT_EQ(strings.text(' '), " ");
  EXPECT_EQ(strings.text('\n'), "\n");
  for (int32_t id = 0; id < 0x80; ++id)
    EXPECT_EQ(strings.text(id), std::string(1, static_cast<char>(id))) << id;
  EXPECT_EQ(strings.text(0x80), "bytes:\\x80");
  EXPECT_EQ(strings.text(0xc3), "bytes:\\xc3");
  EXPECT_EQ(strings.text(0xff), "bytes:\\xff");
  EXPECT_EQ(strings.id("no such"), -1);
  EXPECT_EQ(strings.id(""), -1);
  EXPECT_THROW(strings.text(256), Error);
  EXPECT_THROW(strings.text(-1), Error);
}

// SentencePiece: byte-fallback pieces decode to the same text as real pieces; the piece the
// tokenizer itself produces must keep the plain string, so an echoed prompt reads as its text.
TEST(TokenStrings, SentencePiecesKeepTheirTextAndByteFallbacksYield) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "And God said, Let there be light: and there was light.\n";
  SentencePieceOptions o;
  o.vocab_size = 300;
  const auto tok = train_sentencepiece(text, o);
  const TokenStrings strings(*tok);
  std::set<std::string> seen;
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    EXPECT_EQ(strings.id(strings.text(id)), id) << id;
    seen.insert(strings.text(id));
  }
  EXPECT_EQ(int64_t(seen.size()), tok->vocab_size());
  std::string joined;
  for (int32_t id : tok->encode("And God said, Let there be light")) {
    EXPECT_EQ(strings.text(id).rfind("bytes:", 0), std::string::npos) << "'" << strings.text(id) << "'";
    joined += strings.text(id);
  }
  EXPECT_EQ(joined, "And God said, Let there be light");
}

}  // namespace
}  // namespace retort
