// Sequence-level KD (Kim & Rush, 2016): the teacher writes continuations of prompts and
// the student learns them with plain cross-entropy. The text is what a text-only API
// would return, so it is kept as text (JSONL) and re-tokenized by the student's side.
#include <torch/torch.h>

#include <cstdio>
#include <sstream>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/sequence_kd.h"
#include "retort/progress.h"
#include "retort/runtime.h"

namespace retort {

std::vector<torch::Tensor> sequence_kd_prompts(const Tokenizer& tok, const TokenSet& train, int64_t seq_len,
                                               const SequenceKdOptions& o) {
  std::vector<torch::Tensor> rows;
  if (!o.prompts_file.empty()) {
    TextCorpus prompts = load_text_corpus(o.prompts_file);
    for (const auto& p : prompts.documents) {
      std::vector<int32_t> ids = tok.encode(p);
      if (ids.empty()) continue;
      rows.push_back(torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64));
    }
    if (rows.empty()) fail("distill.prompts ", o.prompts_file, " holds no non-empty prompt");
    return rows;
  }
  int64_t windows = (train.size() - 1) / seq_len;
  if (windows < 1) fail("sequence KD: the training text has ", train.size(), " tokens, fewer than one window");
  int64_t n = o.sequences > 0 ? o.sequences : windows;
  torch::Tensor tokens = train.tokens.to(torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    int64_t w = (i * windows) / n % windows;
    rows.push_back(tokens.narrow(0, w * seq_len, o.prompt_tokens));
  }
  return rows;
}

std::string sequence_kd_key(const std::string& teacher, const Tokenizer& tokenizer, const TokenSet& train,
                            int64_t seq_len, const SequenceKdOptions& o) {
  if (o.prompt_tokens < 1 || o.new_tokens < 1) fail("sequence KD: prompt and new tokens must be >= 1");
  Hasher h;
  h.update(teacher).update(tokenizer.fingerprint());
  h.update(train.tokens.data_ptr(), train.tokens.numel() * train.tokens.element_size());
  h.update(cat(seq_len, "/", o.prompt_tokens, "/", o.new_tokens, "/", o.sequences, "/", o.sampling.temperature, "/",
               o.sampling.top_k, "/", o.sampling.top_p, "/", o.sampling.seed, "/", o.prompts_file));
  if (!o.prompts_file.empty()) h.update(read_text(o.prompts_file));
  return h.hex();
}

TextCorpus teacher_written_corpus(ModelImpl& teacher, const Tokenizer& tokenizer, const TokenSet& train,
                                  int64_t seq_len, const SequenceKdOptions& o, const std::string& fingerprint,
                                  const std::filesystem::path& cache_dir) {
  fs::path file = cache_dir / cat("seqkd-", sequence_kd_key(fingerprint, tokenizer, train, seq_len, o), ".jsonl");
  TextCorpus out;
  if (fs::exists(file)) {
    out = load_text_corpus(file.string());
    out.source = cat("teacher-written text (", out.documents.size(), " sequences, cached ", file.string(), ")");
    return out;
  }
  std::vector<torch::Tensor> prompts = sequence_kd_prompts(tokenizer, train, seq_len, o);
  ProgressBar bar("teacher writes", int64_t(prompts.size()), "seq");
  std::ostringstream jsonl;
  const torch::Device device = model_device(teacher);
  // Rows of equal length go together; prompts from windows all have prompt_tokens.
  for (size_t i = 0; i < prompts.size();) {
    size_t j = i;
    while (j < prompts.size() && int64_t(j - i) < o.batch_size && prompts[j].size(0) == prompts[i].size(0)) ++j;
    torch::Tensor batch = torch::stack(std::vector<torch::Tensor>(prompts.begin() + i, prompts.begin() + j));
    SamplingOptions s = o.sampling;
    s.seed = mix_seed(o.sampling.seed, 0x5e9, i);
    torch::Tensor seq = generate(teacher, batch.to(device), o.new_tokens, s).to(torch::kCPU);  // (B, P + new)
    for (int64_t r = 0; r < seq.size(0); ++r) {
      torch::Tensor row = seq[r].to(torch::kInt32).contiguous();
      std::vector<int32_t> ids(row.data_ptr<int32_t>(), row.data_ptr<int32_t>() + row.numel());
      // Sampled bytes need not be valid UTF-8: such bytes become U+FFFD rather than an error.
      jsonl << nlohmann::json{{"text", tokenizer.decode(ids)}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
    }
    i = j;
    bar.update(int64_t(i), int64_t(i));
    if (interrupt_requested()) throw Interrupted("sequence KD: the teacher's text was not finished (nothing kept)");
  }
  bar.finish();
  ensure_writable_dir(cache_dir);
  atomic_write_text(file, jsonl.str());
  out = load_text_corpus(file.string());
  out.source = cat("teacher-written text (", out.documents.size(), " sequences)");
  return out;
}

}  // namespace retort
