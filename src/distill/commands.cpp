// `retort train` and `retort distill`, once for both kinds of data.
#include "retort/commands.h"

#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/load_model.h"
#include "retort/run_kind.h"

namespace retort {

const RunKind& run_kind(const std::string& data_kind) {
  for (const RunKind* kind : {&image_runs(), &text_runs()})
    if (data_kind == kind->data_kind()) return *kind;
  fail("data.kind = '", data_kind, "': retort trains on ", image_runs().data_kind(), " or ", text_runs().data_kind());
}

const RunKind& run_kind_of(const LoadedModel& model) { return model.tokenizer ? text_runs() : image_runs(); }

namespace {

CommandResult finish(const RunOutcome& outcome) {
  CommandResult r{outcome.dir, outcome.summary, {}};
  if (dist::is_main()) r.report = write_run_report(outcome.dir, outcome.report);
  return r;
}

}  // namespace

CommandResult train_command(const Options& o, const std::filesystem::path& dir) {
  return finish(run_kind(o.data.kind).train(o, dir));
}

CommandResult distill_command(const Options& o, const std::filesystem::path& dir) {
  const RunKind& kind = run_kind(o.data.kind);
  const std::string& source = o.teacher.path;
  if (source.empty()) fail("distill needs a teacher: --teacher PATH or teacher.path");
  OpenedTeacher teacher = open_teacher(source, o.teacher.source);
  teacher.check_data_kind(kind.data_kind());
  return finish(kind.distill(o, dir, teacher));
}

Evaluation eval_command(const Options& o, const std::string& model, const std::string& teacher,
                        const std::string& logits_out) {
  LoadedModel m = load_model(model);
  // What every model has (where, what, how big) first; then its kind's quality and speed.
  Evaluation e = run_kind_of(m).evaluate(o, m, teacher, logits_out);
  const int64_t params = count_parameters(*m.model), bytes = model_size_on_disk(m.dir);
  e.figures.update({{"model", m.dir.string()}, {"name", m.spec.name}, {"params", params}, {"bytes_on_disk", bytes}});
  const std::string tokenizer = m.tokenizer ? ", " + m.tokenizer->describe() : "";
  e.lines.insert(e.lines.begin(), {{"model", cat(m.dir.string(), " (", m.spec.name, tokenizer, ")")},
                                   {"params", cat(params, " (", decimals(bytes / 1024.0, 1), " KiB on disk)")}});
  return e;
}

}  // namespace retort
