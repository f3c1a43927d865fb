// Language-model runs: labels and distillation specs, on-policy batches, the run itself.
#include <torch/torch.h>

#include <cstdio>

#include "retort/distributed.h"
#include "retort/divergence.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/labels.h"
#include "retort/lm_run.h"
#include "retort/text_data.h"
#include "retort/sharded_source.h"

namespace retort {

namespace {

// GKD's on-policy batches: with probability lambda (drawn from (seed, epoch, batch), so a
// resumed run draws the same), each window keeps its first prompt_tokens tokens and the
// student writes the rest; only the student-written positions are scored, and the batch
// is marked as not a stored window so a cached teacher asks its live model.
class OnPolicySource : public BatchSource {
 public:
  // `base` gives windows of seq_len tokens (this rank's shard of them under data parallelism;
  // `rank` then keeps the ranks' samples apart).
  OnPolicySource(const BatchSource& base, int64_t seq_len, ModelImpl& student, double lambda, int64_t prompt_tokens,
                 SamplingOptions sampling, uint64_t seed, int rank)
      : base_(base), student_(student), lambda_(lambda), prompt_(prompt_tokens), sampling_(sampling), seed_(seed),
        rank_(rank) {
    if (prompt_tokens < 1 || prompt_tokens >= seq_len)
      fail("on-policy: distill.prompt_tokens must be in [1, text.seq_len - 1] = [1, ", seq_len - 1, "], got ",
           prompt_tokens);
  }
  int64_t batches_per_epoch() const override { return base_.batches_per_epoch(); }
  Batch batch(int64_t epoch, int64_t b) const override {
    Batch out = base_.batch(epoch, b);
    double u = double(mix_seed(seed_, 0x0b01, uint64_t(epoch) * 1000003u + uint64_t(b)) >> 11) * 0x1.0p-53;
    if (u >= lambda_) return out;
    const int64_t T = out.x.size(1);
    SamplingOptions s = sampling_;
    s.seed = mix_seed(seed_ + uint64_t(rank_), uint64_t(epoch), uint64_t(b));
    torch::Tensor prompts = out.x.narrow(1, 0, prompt_).to(model_device(student_));
    torch::Tensor seq = generate(student_, prompts, T + 1 - prompt_, s).to(torch::kCPU);  // (B, T + 1)
    out.x = seq.narrow(1, 0, T).contiguous();
    out.y = seq.narrow(1, 1, T).clone();
    out.y.narrow(1, 0, prompt_ - 1).fill_(kIgnoreLabel);  // the prompt was not written by the student
    out.augmented = true;
    return out;
  }

 private:
  const BatchSource& base_;
  ModelImpl& student_;
  double lambda_;
  int64_t prompt_;
  SamplingOptions sampling_;
  uint64_t seed_;
  int rank_;
};


}  // namespace

RunSpec lm_labels_run_spec(const Options& o, const ModelOptions& model, const TrainSection& train,
                           const TextData& data, const std::filesystem::path& dir) {
  RunSpec s;
  s.dir = dir;
  s.model = gpt_spec_from(model, data.tokenizer->vocab_size(), data.seq_len);
  s.train = train.train;
  s.batch_size = o.data.batch_size;
  s.objective = Objective().add(1.0, std::make_shared<CrossEntropyTerm>());
  s.log_every = o.run.log_every;
  s.device = torch::Device(o.run.device);
  s.config_toml = o.toml();
  s.digest = o.digest(model.section + ".") + o.digest(train.section + ".") + o.digest("data.") + o.digest("text.") +
             o.digest("run.seed") + data.tokenizer->fingerprint();
  s.extra = {{"method", "labels"}, {"tokenizer", data.tokenizer->describe()}};
  return s;
}

void make_lm_distill_spec(RunSpec& s, const Options& o, const PreparedLmTeacher& t) {
  const std::string& loss = o.distill.loss;
  const double alpha = o.distill.alpha, T = o.distill.temperature, weight = o.distill.weight;
  s.objective = make_distill_objective(loss, alpha, T, weight);
  s.teacher = t.signal;
  s.teacher_test_logits = t.val_top1;
  s.on_policy = o.distill.on_policy;
  s.prompt_tokens = o.distill.prompt_tokens;
  s.sample_temperature = o.distill.sample_temperature;
  s.sample_top_p = o.distill.sample_top_p;
  // On-policy batches sample from the student; with overlap they would be built on the teacher's
  // thread (toggling eval()) while the main thread trains the same module: a data race.
  if (s.on_policy > 0 && o.run.overlap_teacher)
    fail("distill.on_policy = ", s.on_policy, " samples from the student while it trains, and run.overlap_teacher = true ",
         "would build those batches on another thread as the main thread updates the same weights; ",
         "set run.overlap_teacher = false (on-policy batches are built on the main thread)");
  if (s.on_policy > 0 && alpha < 1)
    fail("distill.on_policy = ", s.on_policy, " trains on the student's own samples, where cross-entropy would ",
         "reinforce them; set distill.alpha = 1 (divergence only, as GKD does)");
  // No model: a teacher known only by its signal (an openai: endpoint, whose describe() names it).
  s.digest += o.digest("distill.") + (t.model ? t.model->fingerprint() : t.signal->describe());
  s.extra = {{"method", loss},        {"loss", loss},       {"temperature", T},  {"alpha", alpha},
             {"top_k", t.top_k},      {"on_policy", s.on_policy}, {"teacher", t.model ? t.model->describe() : t.signal->describe()},
             {"tokenizer", s.extra.value("tokenizer", "")}};
  if (weight > 0) s.extra["beta"] = weight;
  if (t.model) s.extra["teacher_precision"] = precision_name(t.model->precision());
  if (!t.cache.path.empty())
    s.extra["teacher_cache"] = {{"hit", t.cache.hit}, {"seconds", t.cache.seconds}, {"bytes", t.cache.bytes}};
}

PreparedLmTeacher prepare_lm_teacher(const Options& o, ModelPtr teacher, const std::string& description,
                                     const TextData& data) {
  teacher->to(torch::Device(o.run.device));
  PreparedLmTeacher p;
  p.top_k = o.distill.top_k;
  p.model = std::make_shared<ModelTeacher>(teacher, description, p.top_k);
  p.model->set_precision(o.distill.teacher_precision);
  p.signal = p.model;
  int64_t batch = o.data.eval_batch_size;
  if (o.distill.cache && p.top_k > 0) {
    TokenBatcher windows(data.train, data.seq_len, batch, /*shuffle=*/false, /*seed=*/0);
    TopkCache cache = load_or_build_topk_cache(*p.model, windows, data.train, p.top_k, o.run.cache_dir, &p.cache);
    p.signal = std::make_shared<TopkCachedTeacher>(p.model, std::move(cache));
  }
  p.val = score_lm(*teacher, data.validation, *data.tokenizer, data.seq_len, batch, {}, &p.val_top1);
  return p;
}

LmRunResult execute_lm_run(const RunSpec& spec, const TextData& data,
                           const std::function<std::string(ModelImpl&)>& init) {
  // A finished run that is reused keeps the learning curve it recorded.
  nlohmann::json old_curve;
  if (fs::exists(spec.dir / "run.json")) {
    auto old = nlohmann::json::parse(read_text(spec.dir / "run.json"), nullptr, false);
    if (!old.is_discarded() && old.value("digest", "") == spec.digest && old.contains("curve")) old_curve = old["curve"];
  }
  nlohmann::json meta = begin_run(spec);
  torch::manual_seed(mix_seed(spec.train.seed, 0x1417));  // initialisation
  LmRunResult r;
  r.dir = spec.dir;
  r.spec = spec.model;
  r.model = make_model(spec.model);
  if (init) meta["init"] = init(*r.model);  // a checkpoint, when resumed, replaces it
  r.model->to(spec.device);
  TokenBatcher windows(data.train, data.seq_len, spec.batch_size, /*shuffle=*/true, spec.train.seed);
  ShardedSource shard(windows, dist::rank(), dist::world_size());
  std::unique_ptr<OnPolicySource> on_policy;
  const BatchSource* source = dist::active() ? static_cast<const BatchSource*>(&shard) : &windows;
  if (spec.on_policy > 0) {
    SamplingOptions s;
    s.temperature = spec.sample_temperature;
    s.top_p = spec.sample_top_p;
    on_policy = std::make_unique<OnPolicySource>(*source, data.seq_len, *r.model, spec.on_policy, spec.prompt_tokens, s,
                                                 spec.train.seed, dist::rank());
    source = on_policy.get();
  }
  Trainer trainer(r.model, *source, spec.objective, spec.teacher, spec.train);
  int64_t every = spec.eval_every > 0 ? spec.eval_every : std::max<int64_t>(1, trainer.total_steps() / 8);
  auto eval = std::make_shared<LmEvalObserver>(data, spec.eval_batch_size, every, spec.teacher_test_logits);
  r.reused = train_in_folder(trainer, spec, {eval});
  r.train_seconds = trainer.train_seconds();
  if (!dist::is_main()) return r;  // rank 0 evaluates and writes the results
  r.train_tokens_per_second =
      r.train_seconds > 0 ? double(trainer.step()) * spec.batch_size * data.seq_len / r.train_seconds : 0;
  r.val = score_lm(*r.model, data.validation, *data.tokenizer, data.seq_len, spec.eval_batch_size,
                   spec.teacher_test_logits, &r.val_top1);
  if (r.reused && old_curve.is_array()) {
    r.curve = old_curve.get<std::vector<std::pair<double, double>>>();
  } else {
    r.curve = eval->curve();
    if (r.curve.empty() || r.curve.back().first != double(trainer.step())) r.curve.emplace_back(trainer.step(), r.val.bpb);
  }
  r.tokens_per_second = lm_tokens_per_second(*r.model, data.tokenizer->vocab_size(), data.seq_len, 16, 1.0);
  r.params = count_parameters(*r.model);
  r.model->to(torch::kCPU);
  r.bytes_on_disk = save_model(*r.model, spec.model, spec.dir / "model");
  data.tokenizer->save(spec.dir / "model");
  nlohmann::json results = {{"val_loss", r.val.loss},
                            {"val_bpb", r.val.bpb},
                            {"val_tokens", r.val.tokens},
                            {"params", r.params},
                            {"bytes_on_disk", r.bytes_on_disk},
                            {"tokens_per_second", r.tokens_per_second},
                            {"train_tokens_per_second", r.train_tokens_per_second},
                            {"curve", r.curve}};
  if (r.val.agreement >= 0) results["agreement"] = r.val.agreement;
  finish_run(spec, trainer, meta, results);
  return r;
}

}  // namespace retort
