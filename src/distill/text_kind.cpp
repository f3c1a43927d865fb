// Language models as a kind of run (data.kind = text): a tokenized corpus, gpt models,
// validation bits per byte; a teacher gives dense logits, its top-k (cached), text it writes
// (sequence-level KD), or answers through an API (lm_api_flow.cpp).
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/eval.h"
#include "retort/lm_flows.h"
#include "retort/run_kind.h"

namespace retort {

namespace {

class TextRuns : public RunKind {
 public:
  const char* data_kind() const override { return "text"; }

  RunMetric metric() const override { return {"val_bpb", "validation bits per byte", false, 1, " bits/byte", 4}; }

  RunOutcome train(const Options& o, const std::filesystem::path& dir) const override {
    TextData data = load_text_data(o.text, nullptr, dir / "tokenizer");
    RunSpec spec = lm_labels_run_spec(o, o.model, o.train, data, dir);
    spec.label = "train";
    return {dir, describe_lm_result(execute_lm_run(spec, data)), {"train", metric()}};
  }

  RunOutcome distill(const Options& o, const std::filesystem::path& dir, OpenedTeacher& opened) const override {
    RunReportInput report{"distill", metric()};
    if (opened.api)  // nothing to score the teacher with: its validation score stays unknown
      return {dir, describe_lm_result(lm_distill_api(o, dir, *opened.api)), report};
    LoadedModel& t = *opened.model;
    report.teacher_params = count_parameters(*t.model);
    int64_t teacher_vocab = 0;
    std::shared_ptr<Tokenizer> teacher_tok = lm_teacher_tokenizer(t, o.text, &teacher_vocab);
    std::shared_ptr<Tokenizer> student_tok = o.text.tokenizer == "auto" ? teacher_tok : nullptr;
    TextData data = load_text_data(o.text, student_tok, dir / "tokenizer");
    t.model->to(torch::Device(o.run.device));

    if (o.distill.method == "sequence") {
      // Text only: the teacher's tokenizer writes, the student's reads.
      TextData teacher_view = student_tok ? data : load_text_data(o.text, teacher_tok);
      ModelTeacher frozen(t.model, t.dir.string());
      TextCorpus written = teacher_written_corpus(*t.model, *teacher_tok, teacher_view.train, data.seq_len,
                                                  sequence_kd_options_from(o, data.seq_len), frozen.fingerprint(),
                                                  o.run.cache_dir);
      if (dist::is_main()) std::fprintf(stderr, "sequence KD: %s\n", written.source.c_str());
      TeacherTextRun run = teacher_text_run(o, dir, data, written, frozen.fingerprint(), t.dir.string());
      if (teacher_vocab == data.tokenizer->vocab_size())  // same tokens: agreement (and the teacher's score) defined
        report.teacher_value = score_lm(*t.model, data.validation, *data.tokenizer, data.seq_len,
                                        run.spec.eval_batch_size, {}, &run.spec.teacher_test_logits)
                                   .bpb;
      return {dir, describe_lm_result(execute_lm_run(run.spec, run.data)), report};
    }

    check_same_vocabulary(teacher_vocab, data.tokenizer->vocab_size(), "distill.method = logits");
    PreparedLmTeacher prepared = prepare_lm_teacher(o, t.model, t.dir.string(), data);
    report.teacher_value = prepared.val.bpb;
    if (!prepared.cache.path.empty() && dist::is_main())
      std::fprintf(stderr, "%s\n", prepared.cache.describe(data.train.size()).c_str());
    RunSpec spec = lm_labels_run_spec(o, o.model, o.train, data, dir);
    make_lm_distill_spec(spec, o, prepared);
    spec.label = "distill";
    std::function<std::string(ModelImpl&)> init;
    if (o.distill.init_from_teacher)
      init = [&](ModelImpl& student) { return init_student_from_teacher(student, *t.model); };
    return {dir, describe_lm_result(execute_lm_run(spec, data, init)), report};
  }

  // A language model on the held-out text of text.corpus, read with the model's own tokenizer.
  Evaluation evaluate(const Options& o, const LoadedModel& m, const std::string& teacher,
                      const std::string& logits_out) const override {
    if (!logits_out.empty()) fail("--logits-out is for classifiers; ", m.dir.string(), " is a language model");
    TextData data = load_text_data(o.text, m.tokenizer);
    int64_t seq_len = data.seq_len;
    if (m.spec.options.contains("max_seq_len"))
      seq_len = std::min(seq_len, m.spec.options.at("max_seq_len").get<int64_t>());
    const int64_t batch = o.data.eval_batch_size;
    torch::Tensor teacher_top1;
    if (!teacher.empty()) {
      LoadedModel t = open_teacher(teacher).local_model("retort eval --teacher");
      int64_t teacher_vocab = 0;
      lm_teacher_tokenizer(t, o.text, &teacher_vocab);
      check_same_vocabulary(teacher_vocab, m.tokenizer->vocab_size(), "agreement is measured token by token");
      score_lm(*t.model, data.validation, *data.tokenizer, seq_len, batch, {}, &teacher_top1);
    }
    LmScore score = score_lm(*m.model, data.validation, *data.tokenizer, seq_len, batch, teacher_top1);
    Evaluation e;
    e.figures = {{"tokenizer", m.tokenizer->describe()},
                 {"val_bpb", score.bpb}, {"val_loss", score.loss}, {"tokens", score.tokens},
                 {"tokens_per_second", lm_tokens_per_second(*m.model, m.tokenizer->vocab_size(), seq_len, batch)}};
    if (score.agreement >= 0) e.figures["agreement"] = score.agreement;
    e.lines = {{"validation", cat(decimals(score.bpb, 4), " bits/byte (loss ", decimals(score.loss, 4),
                                  " nats/token) on ", score.tokens, " tokens")}};
    if (score.agreement >= 0)
      e.lines.push_back({"agreement", cat(decimals(100 * score.agreement, 2), "% top-1 with the teacher")});
    e.lines.push_back({"throughput", cat(decimals(e.figures["tokens_per_second"].get<double>(), 0), " tokens/s")});
    return e;
  }
};

}  // namespace

const RunKind& text_runs() {
  static const TextRuns kind;
  return kind;
}

}  // namespace retort
