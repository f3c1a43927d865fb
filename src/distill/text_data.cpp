// Text data for language-model runs: corpus -> split -> tokenizer -> token sets, from config.
#include <torch/torch.h>

#include <cstdio>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/text_data.h"

namespace retort {

namespace {

// The split is the same for every run of a corpus, whatever run.seed is: a student and its
// teacher must never disagree about what was held out.
constexpr uint64_t kSplitSeed = 0x5e1177;

TokenSet first_tokens(TokenSet s, int64_t n, const Tokenizer& t) {
  if (n <= 0 || n >= s.size()) return s;
  int64_t bytes = 0;
  const auto& per = t.token_bytes();
  auto ids = s.tokens.narrow(0, 0, n).contiguous();
  const int32_t* p = ids.data_ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i) bytes += per[p[i]];
  s.tokens = ids;
  s.bytes = bytes;
  s.source += cat(" (first ", n, " tokens)");
  return s;
}

std::string corpus_digest(const TextCorpus& c) {
  Hasher h;
  for (const auto& d : c.documents) {
    h.update(d.data(), d.size());
    h.update("\0", 1);
  }
  return h.hex();
}

std::shared_ptr<Tokenizer> tokenizer_from_options(const TextOptions& options, const TextCorpus& train,
                                                  const std::filesystem::path& dir) {
  if (options.tokenizer == "byte") return make_byte_tokenizer();
  SentencePieceOptions o;
  o.model_type = options.model_type;
  o.vocab_size = options.vocab_size;
  std::string key = cat(corpus_digest(train), "-", o.model_type, "-", o.vocab_size);
  if (!dir.empty() && fs::exists(dir / "tokenizer.json") && fs::exists(dir / "trained-on.txt") &&
      read_text(dir / "trained-on.txt") == key) {
    try {
      return load_tokenizer(dir);
    } catch (const Error& e) {
      std::fprintf(stderr, "tokenizer in %s unreadable (%s); training it again\n", dir.c_str(), e.what());
    }
  }
  std::string text;
  for (const auto& d : train.documents) text += d + "\n";
  std::fprintf(stderr, "training a SentencePiece %s tokenizer (%lld pieces) on %.1f MB of text...\n",
               o.model_type.c_str(), (long long)o.vocab_size, text.size() / 1e6);
  auto tok = train_sentencepiece(text, o);
  if (!dir.empty()) {
    tok->save(dir);
    atomic_write_text(dir / "trained-on.txt", key);
  }
  return tok;
}

}  // namespace

TextData load_text_data(const TextOptions& text, std::shared_ptr<Tokenizer> tokenizer,
                        const std::filesystem::path& tok_dir) {
  TextCorpus corpus = load_text_corpus(text.corpus);
  CorpusSplit split = split_corpus(corpus, text.validation_fraction, kSplitSeed);
  TextData d;
  d.corpus = corpus.source;
  d.seq_len = text.seq_len;
  d.tokenizer = tokenizer ? tokenizer : tokenizer_from_options(text, split.train, tok_dir);
  d.train = first_tokens(tokenize(split.train, *d.tokenizer), text.train_tokens, *d.tokenizer);
  d.validation = first_tokens(tokenize(split.validation, *d.tokenizer), text.val_tokens, *d.tokenizer);
  if (d.train.size() < d.seq_len + 1)
    fail("the training text has ", d.train.size(), " tokens, fewer than one window of text.seq_len + 1 = ",
         d.seq_len + 1);
  std::fprintf(stderr, "text: %s; tokenizer %s; train %lld tokens (%.2f bytes/token), validation %lld tokens\n",
               d.corpus.c_str(), d.tokenizer->describe().c_str(), (long long)d.train.size(),
               double(d.train.bytes) / d.train.size(), (long long)d.validation.size());
  return d;
}

ModelSpec gpt_spec_from(const ModelOptions& m, int64_t vocab_size, int64_t seq_len) {
  const std::string& p = m.section;
  if (m.name != "gpt")
    fail(p, ".name is '", m.name, "', but text (data.kind = text) needs a language model: ", "set ", p, ".name = gpt");
  ModelSpec s;
  s.name = "gpt";
  s.options = {{"vocab_size", vocab_size},
               {"d_model", m.d_model},
               {"n_layers", m.layers},
               {"n_heads", m.heads},
               {"n_kv_heads", m.kv_heads},
               {"d_ff", m.d_ff},
               {"max_seq_len", seq_len},
               {"tie_embeddings", m.tie_embeddings},
               {"dropout", m.dropout}};
  return s;
}

void check_same_vocabulary(int64_t teacher_vocab, int64_t student_vocab, const std::string& why) {
  if (teacher_vocab != student_vocab)
    fail("the teacher's vocabulary has ", teacher_vocab, " tokens but the student's has ", student_vocab, ": ", why,
         " needs the same tokenizer on both sides (use the teacher's: text.tokenizer = auto), or distil from ",
         "text alone with distill.method = sequence");
}

}  // namespace retort
