// Image-classifier runs: the model and data the options describe, labels and distillation
// specs, the teacher prepared for one, and the run with its test accuracy.
#include <torch/torch.h>

#include "retort/divergence.h"
#include "retort/distributed.h"
#include "retort/divergence_table.h"
#include "retort/error.h"
#include "retort/eval.h"
#include "retort/image_run.h"
#include "retort/observers.h"
#include "retort/sharded_source.h"

namespace retort {

// ---- options -> what a classifier run is made of ---------------------------------------

ModelSpec model_spec_from(const ModelOptions& m, const ImageSet& data) {
  ModelSpec s;
  s.name = m.name;
  s.options = {{"in_channels", data.images.size(1)}, {"height", data.images.size(2)},
               {"width", data.images.size(3)},        {"num_classes", data.num_classes},
               {"hidden", m.hidden},                  {"dropout", m.dropout}};
  if (s.name == "cnn") s.options["channels"] = m.channels;
  if (s.name == "tree") s.options.update({{"depth", m.depth}, {"beta", m.beta}, {"split_penalty", m.split_penalty}});
  return s;
}

ImageSet load_split_from(const DataOptions& d, const std::string& split) {
  ImageSetOptions o;
  o.dir = d.path;
  o.split = d.validation > 0 ? "train" : split;
  o.subset = o.split == "train" ? d.train_subset : d.test_subset;
  o.mean = d.mean;
  o.std = d.std;
  ImageSet set = load_image_set(o);
  if (d.validation <= 0) return set;
  // tuning: the last `validation` training images stand in for the test set
  const int64_t n = set.size(), keep = n - d.validation;
  if (keep < 1) fail("data.validation = ", d.validation, " leaves no training images (the training set has ", n, ")");
  const int64_t first = split == "train" ? 0 : keep, len = split == "train" ? keep : d.validation;
  set.images = set.images.narrow(0, first, len).contiguous();
  set.labels = set.labels.narrow(0, first, len).contiguous();
  set.source = cat(d.path, split == "train" ? " (train minus the last " : " (validation: the last ", d.validation,
                   " training images; ", len, " examples)");
  return set;
}

RunSpec labels_run_spec(const Options& o, const ModelOptions& model, const TrainSection& train,
                        const ImageSet& data, const std::filesystem::path& dir) {
  RunSpec s;
  s.dir = dir;
  s.model = model_spec_from(model, data);
  s.train = train.train;
  s.augment = train.augment;
  s.batch_size = o.data.batch_size;
  s.objective = make_kd_objective(/*alpha=*/0.0, /*temperature=*/1.0);
  s.log_every = o.run.log_every;
  s.device = torch::Device(o.run.device);
  s.config_toml = o.toml();
  s.digest = o.digest(model.section + ".") + o.digest(train.section + ".") + o.digest("data.") + o.digest("run.seed");
  s.extra = {{"method", "labels"}};
  return s;
}

void check_model_fits(ModelImpl& model, const ImageSet& data, const std::string& who) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  // Two images: a module traced at one batch size and unable to take others fails here.
  torch::Tensor x = data.images.narrow(0, 0, std::min<int64_t>(2, data.size())).to(model_device(model));
  torch::Tensor logits;
  try {
    logits = model.forward(x).logits;
  } catch (const c10::Error& e) {
    std::string m = e.what_without_backtrace();
    fail(who, " cannot take inputs of shape ", x.sizes(), ": ", m.substr(0, m.find('\n')));
  }
  model.train(was_training);
  if (logits.dim() != 2 || logits.size(0) != x.size(0) || logits.size(1) != data.num_classes)
    fail(who, " maps images ", x.sizes(), " to logits of shape ", logits.sizes(), ", but the data has ",
         data.num_classes, " classes (expected [", x.size(0), ", ", data.num_classes, "])");
}

PreparedTeacher prepare_teacher(const Options& o, ModelPtr teacher, const std::string& description,
                                const ImageSet& train, const ImageSet& test, torch::Tensor test_logits) {
  check_model_fits(*teacher, train, "the teacher");
  teacher->to(torch::Device(o.run.device));
  PreparedTeacher p;
  p.model = std::make_shared<ModelTeacher>(teacher, description);
  p.model->set_precision(o.distill.teacher_precision);
  p.signal = p.model;
  if (o.distill.cache) {
    const AugmentOptions views = o.train.augment.views > 0 ? o.train.augment : AugmentOptions{};
    torch::Tensor table = load_or_build_logit_cache(*p.model, train, o.run.cache_dir, &p.cache, views);
    p.signal = std::make_shared<CachedTeacher>(p.model, table, views.views);
  }
  p.test_logits = test_logits.defined() ? test_logits
                                        : predict_logits(p.model->model(), test, o.data.eval_batch_size);
  return p;
}

void make_distill_spec(RunSpec& s, const Options& o, const PreparedTeacher& t) {
  const double alpha = o.distill.alpha, T = o.distill.temperature;
  s.objective = make_distill_objective(o.distill.loss, alpha, T, o.distill.weight);
  s.teacher = t.signal;
  s.teacher_test_logits = t.test_logits;
  // No model: a teacher known only by its signal (an openai: endpoint, whose describe() names it).
  s.digest += o.digest("distill.") + (t.model ? t.model->fingerprint() : t.signal->describe());
  s.extra = {{"method", "kd"},  {"loss", o.distill.loss}, {"temperature", T}, {"alpha", alpha},
             {"teacher", t.model ? t.model->describe() : t.signal->describe()}};
  if (t.model) s.extra["teacher_precision"] = precision_name(t.model->precision());
  if (!t.cache.path.empty())
    s.extra["teacher_cache"] = {{"hit", t.cache.hit}, {"seconds", t.cache.seconds}, {"bytes", t.cache.bytes}};
  s.extra.update(t.extra);
}

RunResult execute_run(const RunSpec& spec, const ImageSet& train, const ImageSet& test) {
  nlohmann::json meta = begin_run(spec);
  torch::manual_seed(mix_seed(spec.train.seed, 0x1417));  // initialisation
  RunResult r;
  r.dir = spec.dir;
  r.spec = spec.model;
  r.model = make_model(spec.model);
  r.model->to(spec.device);
  Batcher batches(train, spec.batch_size, /*shuffle=*/true, spec.train.seed, spec.augment, train.black);
  ShardedSource shard(batches, dist::rank(), dist::world_size());
  Trainer trainer(r.model, dist::active() ? static_cast<const BatchSource&>(shard) : batches, spec.objective, spec.teacher,
                  spec.train);
  r.reused = train_in_folder(trainer, spec, {std::make_shared<EvalObserver>(test, spec.teacher_test_logits)});
  r.train_seconds = trainer.train_seconds();
  if (!dist::is_main()) return r;  // rank 0 evaluates and writes the results
  r.test_logits = predict_logits(*r.model, test);
  r.test_accuracy = accuracy(r.test_logits, test.labels);
  if (spec.teacher_test_logits.defined()) r.agreement = agreement(r.test_logits, spec.teacher_test_logits);
  r.params = count_parameters(*r.model);
  r.model->to(torch::kCPU);  // saved and reported from the CPU
  r.bytes_on_disk = save_model(*r.model, spec.model, spec.dir / "model");
  nlohmann::json results = {{"test_accuracy", r.test_accuracy}, {"params", r.params}, {"bytes_on_disk", r.bytes_on_disk}};
  if (r.agreement >= 0) results["agreement"] = r.agreement;
  finish_run(spec, trainer, meta, results);
  return r;
}

}  // namespace retort
