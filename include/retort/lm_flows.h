// Pieces of the language-model runs (the text kind of retort/run_kind.h): the teacher's
// tokenizer, the API teacher's flow, sequence-level KD's settings and run, the terminal line.
#pragma once
#include <filesystem>
#include <string>

#include "retort/options.h"
#include "retort/lm_run.h"
#include "retort/sequence_kd.h"
#include "retort/text_data.h"

namespace retort {

struct ApiEndpoint;  // retort/api_teacher.h

// The teacher's tokenizer and vocabulary size (*vocab). gpt: its own. TorchScript: V probed
// with a (2, text.seq_len) batch; the tokenizer saved beside it, else the byte tokenizer when
// V = 256 and text.tokenizer allows; any other case -> Error naming both sizes.
std::shared_ptr<Tokenizer> lm_teacher_tokenizer(const LoadedModel& teacher, const TextOptions& text, int64_t* vocab);

// distill_command (retort/commands.h) with an openai: teacher (`endpoint`, from the openai: source) and data.kind = text:
// top-k logprobs (distill.method = logits, distill.top_k 1..20) or text (distill.method =
// sequence). Harvests through ApiClient (retort/api_teacher.h) into the top-k or text cache.
LmRunResult lm_distill_api(const Options& o, const std::filesystem::path& dir, const ApiEndpoint& endpoint);

// Sequence-KD settings from distill.* (one full window written per prompt).
SequenceKdOptions sequence_kd_options_from(const Options& o, int64_t seq_len);

// Sequence-level KD's run: the student's labels recipe (model.*, train.*) on `written` (text a
// teacher wrote) tokenized by the student's tokenizer; the run's digest and run.json name the
// teacher (`teacher_digest`: what identifies its answers; `teacher`: where it is).
struct TeacherTextRun {
  TextData data;  // data with train = the teacher's text
  RunSpec spec;
};
TeacherTextRun teacher_text_run(const Options& o, const std::filesystem::path& dir, const TextData& data,
                                const TextCorpus& written, const std::string& teacher_digest, const std::string& teacher);

// One line for the terminal: params, bits per byte, agreement, time.
std::string describe_lm_result(const LmRunResult& r);

}  // namespace retort
