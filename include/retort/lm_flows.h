// The language-model commands as library calls: what `retort train` and `retort distill`
// do when data.kind = text. Each writes one run folder.
#pragma once
#include <filesystem>
#include <string>

#include "retort/config.h"
#include "retort/lm.h"

namespace retort {

struct ApiEndpoint;  // retort/api_teacher.h

// A gpt (model.*, train.*) on next-token labels of text.corpus.
LmRunResult lm_train(const Config& c, const std::filesystem::path& dir);

// The teacher's tokenizer and vocabulary size (*vocab). gpt: its own. TorchScript: V probed
// with a (2, text.seq_len) batch; the tokenizer saved beside it, else the byte tokenizer when
// V = 256 and text.tokenizer allows; any other case -> Error naming both sizes.
std::shared_ptr<Tokenizer> lm_teacher_tokenizer(const LoadedModel& teacher, const Config& c, int64_t* vocab);

// A gpt student from the language model at teacher.path (any teacher source: retort/teacher_source.h): distill.method = logits matches
// the teacher's distributions (distill.loss, top_k, on_policy, init_from_teacher; the
// vocabularies must match); sequence trains on text the teacher wrote (any tokenizers).
LmRunResult lm_distill(const Config& c, const std::filesystem::path& dir);

// lm_distill with an openai: teacher (`endpoint`, from the openai: source) and data.kind = text:
// top-k logprobs (distill.method = logits, distill.top_k 1..20) or text (distill.method =
// sequence). Harvests through ApiClient (retort/api_teacher.h) into the top-k or text cache.
LmRunResult lm_distill_api(const Config& c, const std::filesystem::path& dir, const ApiEndpoint& endpoint);

// Sequence-KD settings from distill.* (one full window written per prompt).
SequenceKdOptions sequence_kd_options_from(const Config& c, int64_t seq_len);

// Sequence-level KD's run: the student's labels recipe (model.*, train.*) on `written` (text a
// teacher wrote) tokenized by the student's tokenizer; the run's digest and run.json name the
// teacher (`teacher_digest`: what identifies its answers; `teacher`: where it is).
struct TeacherTextRun {
  TextData data;  // data with train = the teacher's text
  RunSpec spec;
};
TeacherTextRun teacher_text_run(const Config& c, const std::filesystem::path& dir, const TextData& data,
                                const TextCorpus& written, const std::string& teacher_digest, const std::string& teacher);

// One line for the terminal: params, bits per byte, agreement, time.
std::string describe_lm_result(const LmRunResult& r);

}  // namespace retort
