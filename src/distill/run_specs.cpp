// Building RunSpecs from config: labels runs, teachers, distillation runs.
#include <torch/torch.h>

#include "retort/divergence.h"
#include "retort/divergence_table.h"
#include "retort/error.h"
#include "retort/eval.h"
#include "retort/run.h"

namespace retort {

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
  s.config_toml = o.toml;
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
    torch::Tensor table = load_or_build_logit_cache(*p.model, train, o.run.cache_dir, &p.cache);
    p.signal = std::make_shared<CachedTeacher>(p.model, table);
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
  s.digest += o.digest("distill.") + t.model->fingerprint();
  s.extra = {{"method", "kd"},  {"loss", o.distill.loss}, {"temperature", T}, {"alpha", alpha},
             {"teacher", t.model->describe()},
             {"teacher_precision", precision_name(t.model->precision())}};
  if (!t.cache.path.empty())
    s.extra["teacher_cache"] = {{"hit", t.cache.hit}, {"seconds", t.cache.seconds}, {"bytes", t.cache.bytes}};
}

}  // namespace retort
