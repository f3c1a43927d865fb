// Sequence-level KD: prompts cut from the training windows (or a prompts file), the teacher's
// continuations kept as a corpus, and the key they are cached under.
#pragma once
#include <filesystem>
#include <string>
#include <vector>
#include <torch/types.h>

#include "retort/generate.h"
#include "retort/model.h"
#include "retort/text.h"
#include "retort/tokenizer.h"

namespace retort {

struct SequenceKdOptions {
  int64_t prompt_tokens = 16;   // prompt taken from the start of each training window
  int64_t new_tokens = 112;     // tokens the teacher writes after each prompt
  int64_t sequences = 0;        // how many (0: one per training window)
  std::string prompts_file;     // JSONL {"text": ...}: prompts from there instead of windows
  SamplingOptions sampling;     // temperature, top-p, seed
  int64_t batch_size = 64;      // prompts generated together
};
// The prompts as rows of token ids: the first prompt_tokens of evenly spaced training windows,
// or every non-empty prompt of options.prompts_file (lengths differ).
std::vector<torch::Tensor> sequence_kd_prompts(const Tokenizer& tokenizer, const TokenSet& train, int64_t seq_len,
                                               const SequenceKdOptions& options);
// What a teacher-written corpus is keyed by: the teacher (`teacher`: a fingerprint, or an
// endpoint's URL and model), the tokenizer, the training tokens and the options (16 hex digits).
std::string sequence_kd_key(const std::string& teacher, const Tokenizer& tokenizer, const TokenSet& train,
                            int64_t seq_len, const SequenceKdOptions& options);
// The teacher's continuations of prompts, as a corpus of documents (prompt + continuation,
// decoded to text, so a student with another tokenizer can learn from it too). Kept as
// JSONL in `cache_dir` keyed by teacher, prompts and options, and reused.
TextCorpus teacher_written_corpus(ModelImpl& teacher, const Tokenizer& tokenizer, const TokenSet& train,
                                  int64_t seq_len, const SequenceKdOptions& options,
                                  const std::string& teacher_fingerprint, const std::filesystem::path& cache_dir);

}  // namespace retort
