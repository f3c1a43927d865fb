// Run folders: set-up, resume, training, run.json (the phases every run shares).
#include "retort/run.h"

#include <torch/torch.h>

#include <regex>

#include "retort/checkpoints.h"
#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/eval.h"
#include "retort/flops.h"
#include "retort/fs.h"
#include "retort/observers.h"
#include "retort/sharded_source.h"

namespace retort {

// ---- a run ------------------------------------------------------------------------

nlohmann::json begin_run(const RunSpec& spec) {
  // Data parallelism: rank 0 prepares the folder; the others wait until it has.
  if (!dist::is_main()) {
    dist::barrier();
    return nlohmann::json::object();
  }
  ensure_writable_dir(spec.dir);
  const fs::path checkpoints = spec.dir / "checkpoints";
  fs::path meta_path = spec.dir / "run.json";
  // What a killed run was writing (run.json, metrics, checkpoints, the model) goes before we write.
  static const std::regex any_name(".*");
  for (const fs::path& d : {spec.dir, checkpoints, spec.dir / "model"}) remove_orphaned_temporaries(d, any_name);

  // A resume is only allowed into a folder made by the same configuration.
  if (fs::exists(meta_path)) {
    auto meta = nlohmann::json::parse(read_text(meta_path), nullptr, false);
    std::string old = meta.is_discarded() ? "" : meta.value("digest", "");
    if (old != spec.digest || !spec.resume) {
      if (spec.resume && spec.on_mismatch == OnMismatch::Fail && has_checkpoint(checkpoints))
        fail("run folder ", spec.dir.string(), " holds a run with a different configuration; ",
             "pick another run.name or pass --fresh to start over");
      std::error_code ec;
      fs::remove_all(spec.dir / "checkpoints", ec);
      fs::remove(spec.dir / "metrics.jsonl", ec);
      fs::remove_all(spec.dir / "model", ec);
      fs::remove(meta_path, ec);
    }
  }
  atomic_write_text(spec.dir / "config.toml", spec.config_toml);
  nlohmann::json meta = {{"digest", spec.digest}, {"status", "training"}, {"model", spec.model.name}};
  for (auto& [k, v] : spec.extra.items()) meta[k] = v;
  atomic_write_text(meta_path, meta.dump(2) + "\n");
  dist::barrier();
  return meta;
}

bool train_in_folder(Trainer& trainer, const RunSpec& spec, const std::vector<std::shared_ptr<Observer>>& evaluators) {
  fs::path ckpt = spec.dir / "checkpoints" / "last.pt";
  // Rank 0 picks the checkpoint (the newest that passes its digest); every rank then reads that
  // one (multi-node jobs keep run folders on a shared filesystem).
  fs::path from;
  std::string passed_over;
  if (spec.resume && dist::is_main()) from = load_newest_good_checkpoint(trainer, ckpt, &passed_over);
  if (dist::active()) {
    const int choice = from.empty() ? 0 : from == ckpt ? 1 : 2;
    torch::Tensor flag = torch::tensor({choice});
    std::vector<torch::Tensor> v{flag};
    dist::broadcast(v, 0);
    if (!dist::is_main() && flag.item<int>() != 0) {
      from = flag.item<int>() == 1 ? ckpt : previous_checkpoint(ckpt);
      if (!fs::exists(from))
        fail(dist::describe(), " cannot see ", from.string(), ", which rank 0 resumes from: the ranks of a job must ",
             "share the run folder (run.dir on a shared filesystem)");
      trainer.load_checkpoint(from);
    }
  }
  const bool resume = !from.empty();
  if (resume && trainer.finished()) return true;
  if (resume && dist::is_main())
    std::fprintf(stderr, "%s: %s%sresuming from %s (epoch %lld, step %lld)\n", spec.label.c_str(),
                 passed_over.c_str(), passed_over.empty() ? "" : "; ", from.c_str(), (long long)trainer.epoch() + 1,
                 (long long)trainer.step());
  // Rank 0 evaluates, writes metrics and checkpoints and draws progress; every rank trains.
  if (dist::is_main()) {
    for (const auto& e : evaluators) trainer.add_observer(e);
    trainer.add_observer(std::make_shared<MetricsObserver>(spec.dir / "metrics.jsonl", spec.log_every));
    trainer.add_observer(std::make_shared<ProgressObserver>(dist::active() ? cat(spec.label, " [", dist::world_size(), " ranks]") : spec.label));
    trainer.add_observer(std::make_shared<CheckpointObserver>(ckpt));
  }
  trainer.run();
  return false;
}

void finish_run(const RunSpec& spec, const Trainer& trainer, nlohmann::json meta, const nlohmann::json& results) {
  if (!dist::is_main()) return;
  meta["status"] = "finished";
  meta["ranks"] = dist::world_size();
  meta["precision"] = precision_name(spec.train.precision);
  if (dist::active()) {
    meta["comm_bytes_per_step"] = trainer.comm_bytes_per_step();
    meta["comm_buckets"] = trainer.comm_buckets();
    meta["comm_seconds"] = trainer.comm_seconds();  // rank 0's exposed waiting, this invocation
  }
  // Achieved compute of training: the model's analytic FLOPs per step (retort/flops.h) over the
  // optimisation time, to set against `retort doctor`'s measured matmul peak.
  if (spec.model.name != "torchscript" && trainer.train_seconds() > 0) {
    double flops = train_step_flops(spec.model, spec.batch_size, spec.model.options.value("max_seq_len", int64_t{0}));
    meta["train_gflops_per_second"] = flops * double(trainer.step()) / trainer.train_seconds() / 1e9;
  }
  for (auto& [k, v] : results.items()) meta[k] = v;
  meta["train_seconds"] = trainer.train_seconds();
  meta["epochs"] = spec.train.epochs;
  meta["steps"] = trainer.step();
  meta["objective"] = spec.objective.describe();
  atomic_write_text(spec.dir / "run.json", meta.dump(2) + "\n");
}

}  // namespace retort
