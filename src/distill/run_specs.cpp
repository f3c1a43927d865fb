// Building RunSpecs from config: labels runs, teachers, distillation runs.
#include <torch/torch.h>

#include "retort/divergence.h"
#include "retort/divergence_table.h"
#include "retort/error.h"
#include "retort/eval.h"
#include "retort/run.h"

namespace retort {

RunSpec labels_run_spec(const Config& c, const std::string& model_prefix, const std::string& train_prefix,
                        const ImageSet& train, const std::filesystem::path& dir) {
  RunSpec s;
  s.dir = dir;
  s.model = model_spec_from(c, model_prefix, train);
  s.train = train_options_from(c, train_prefix);
  s.augment = augment_options_from(c, train_prefix);
  s.batch_size = c.get_int("data.batch_size");
  s.objective = make_kd_objective(/*alpha=*/0.0, /*temperature=*/1.0);
  s.log_every = c.get_int("run.log_every");
  s.device = torch::Device(c.get_string("run.device"));
  s.config_toml = c.to_toml();
  s.digest = c.digest(model_prefix + ".") + c.digest(train_prefix + ".") + c.digest("data.") + c.digest("run.seed");
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

PreparedTeacher prepare_teacher(const Config& c, ModelPtr teacher, const std::string& description,
                                const ImageSet& train, const ImageSet& test, torch::Tensor test_logits) {
  check_model_fits(*teacher, train, "the teacher");
  teacher->to(torch::Device(c.get_string("run.device")));
  PreparedTeacher p;
  p.model = std::make_shared<ModelTeacher>(teacher, description);
  p.model->set_precision(parse_precision(c.get_string("distill.teacher_precision"), "distill.teacher_precision"));
  p.signal = p.model;
  if (c.get_bool("distill.cache")) {
    torch::Tensor table = load_or_build_logit_cache(*p.model, train, cache_dir_from(c), &p.cache);
    p.signal = std::make_shared<CachedTeacher>(p.model, table);
  }
  p.test_logits = test_logits.defined() ? test_logits
                                        : predict_logits(p.model->model(), test, c.get_int("data.eval_batch_size"));
  return p;
}

double distill_weight_from(const Config& c) {
  double beta = c.get_float("distill.beta");
  if (beta >= 0) return beta;
  return divergence_row(c.get_string("distill.loss")).default_weight;
}

void make_distill_spec(RunSpec& s, const Config& c, const PreparedTeacher& t) {
  double alpha = c.get_float("distill.alpha"), T = c.get_float("distill.temperature");
  s.objective = make_distill_objective(c.get_string("distill.loss"), alpha, T, distill_weight_from(c));
  s.teacher = t.signal;
  s.teacher_test_logits = t.test_logits;
  s.digest += c.digest("distill.") + t.model->fingerprint();
  s.extra = {{"method", "kd"},  {"loss", c.get_string("distill.loss")}, {"temperature", T}, {"alpha", alpha},
             {"teacher", t.model->describe()},
             {"teacher_precision", precision_name(t.model->precision())}};
  if (!t.cache.path.empty())
    s.extra["teacher_cache"] = {{"hit", t.cache.hit}, {"seconds", t.cache.seconds}, {"bytes", t.cache.bytes}};
}

}  // namespace retort
