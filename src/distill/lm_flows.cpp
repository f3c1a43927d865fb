// Pieces of the language-model runs (text_kind.cpp, lm_api_flow.cpp): the teacher's tokenizer,
// sequence-KD settings and run, the terminal line.
#include <torch/torch.h>

#include <cstdio>

#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/lm_flows.h"

namespace retort {

SequenceKdOptions sequence_kd_options_from(const Options& opt, int64_t seq_len) {
  SequenceKdOptions o;
  o.prompt_tokens = opt.distill.prompt_tokens;
  if (o.prompt_tokens >= seq_len)
    fail("distill.prompt_tokens = ", o.prompt_tokens, " must be below text.seq_len = ", seq_len);
  o.new_tokens = seq_len + 1 - o.prompt_tokens;  // each prompt becomes one full training window
  o.prompts_file = opt.distill.prompts;
  o.sampling.temperature = opt.distill.sample_temperature;
  o.sampling.top_p = opt.distill.sample_top_p;
  o.sampling.seed = static_cast<uint64_t>(opt.run.seed);
  o.batch_size = opt.data.eval_batch_size;
  return o;
}

std::shared_ptr<Tokenizer> lm_teacher_tokenizer(const LoadedModel& t, const TextOptions& text, int64_t* vocab) {
  if (t.spec.name == "gpt") {
    *vocab = t.spec.options.at("vocab_size").get<int64_t>();
    return tokenizer_of_model(t);
  }
  if (t.spec.name != "torchscript")
    fail("the teacher at ", t.dir.string(), " is a ", t.spec.name, ", not a language model");
  const std::string who = cat("the TorchScript teacher ", t.spec.options.at("path").get<std::string>());
  *vocab = probe_lm_vocabulary(*t.model, text.seq_len, who);
  if (t.tokenizer) {
    if (t.tokenizer->vocab_size() != *vocab)
      fail(who, " has another vocabulary than the tokenizer beside it: it predicts ", *vocab, " ids, ",
           t.tokenizer->describe(), " has ", t.tokenizer->vocab_size());
    return t.tokenizer;
  }
  // No tokenizer saved with it: only the byte tokenizer needs none.
  const std::string& choice = text.tokenizer;
  if (*vocab != 256 || (choice != "auto" && choice != "byte"))
    fail(who, " predicts ", *vocab, " ids and has no tokenizer.json beside it; retort can pair a TorchScript "
         "language model with the byte tokenizer (256 ids, text.tokenizer = byte) or with a tokenizer "
         "retort saved (copy tokenizer.json and tokenizer.model from a retort model folder next to it)");
  return make_byte_tokenizer();
}

TeacherTextRun teacher_text_run(const Options& o, const std::filesystem::path& dir, const TextData& data,
                                const TextCorpus& written, const std::string& teacher_digest, const std::string& teacher) {
  TeacherTextRun run{data, {}};
  run.data.train = tokenize(written, *data.tokenizer);
  run.spec = lm_labels_run_spec(o, o.model, o.train, run.data, dir);
  run.spec.digest += o.digest("distill.") + teacher_digest;
  run.spec.extra["method"] = "sequence";
  run.spec.extra["teacher"] = teacher;
  run.spec.label = "distill (sequence)";
  return run;
}

std::string describe_lm_result(const LmRunResult& r) {
  std::string s = cat(r.dir.string(), ": ", r.spec.name, ", ", r.params, " params, validation ", decimals(r.val.bpb, 4),
                      " bits/byte (loss ", decimals(r.val.loss, 4), " nats/token)");
  if (r.val.agreement >= 0) s += cat(", agreement with teacher ", decimals(100 * r.val.agreement, 2), "%");
  return s + cat(", ", decimals(r.train_seconds, 1), " s training");
}

}  // namespace retort
