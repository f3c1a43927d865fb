// The one place that reads configuration keys: Config -> Options.
#include "retort/options.h"

#include "retort/divergence_table.h"
#include "retort/error.h"
#include "retort/fs.h"

namespace retort {

namespace {

ModelOptions model_options(const Config& c, const std::string& p) {
  ModelOptions m;
  m.section = p;
  m.name = c.get_string(p + ".name");
  m.hidden = c.get_ints(p + ".hidden");
  m.channels = c.get_ints(p + ".channels");
  m.dropout = c.get_float(p + ".dropout");
  m.d_model = c.get_int(p + ".d_model");
  m.layers = c.get_int(p + ".layers");
  m.heads = c.get_int(p + ".heads");
  m.kv_heads = c.get_int(p + ".kv_heads");
  m.d_ff = c.get_int(p + ".d_ff");
  m.tie_embeddings = c.get_bool(p + ".tie_embeddings");
  m.depth = c.get_int(p + ".depth");
  m.beta = c.get_float(p + ".beta");
  m.split_penalty = c.get_float(p + ".split_penalty");
  return m;
}

TrainSection train_section(const Config& c, const std::string& p) {
  TrainSection s;
  s.section = p;
  TrainOptions& o = s.train;
  o.epochs = c.get_int(p + ".epochs");
  o.optimizer = c.get_string(p + ".optimizer");
  o.lr = c.get_float(p + ".lr");
  o.weight_decay = c.get_float(p + ".weight_decay");
  o.momentum = c.get_float(p + ".momentum");
  o.warmup_steps = c.get_int(p + ".warmup_steps");
  o.schedule = c.get_string(p + ".schedule");
  o.seed = static_cast<uint64_t>(c.get_int("run.seed"));
  o.precision = parse_precision(c.get_string(p + ".precision"), p + ".precision");
  o.overlap_teacher = c.get_bool("run.overlap_teacher");
  o.bucket_bytes = std::max<int64_t>(1, int64_t(c.get_float("run.bucket_mb") * (1 << 20)));
  s.augment.crop_padding = c.get_int(p + ".crop_padding");
  s.augment.hflip = c.get_bool(p + ".hflip");
  s.augment.views = c.get_int(p + ".views");
  if (s.augment.views > 0 && !s.augment.enabled())
    fail(p, ".views = ", s.augment.views, " needs an augmentation to make views from: set ", p, ".crop_padding or ",
         p, ".hflip");
  return s;
}

}  // namespace

Options read_options(const Config& c) {
  Options o;
  RunOptions& r = o.run;
  r.name = c.get_string("run.name");
  r.dir = c.get_string("run.dir");
  r.seed = c.get_int("run.seed");
  r.threads = c.get_int("run.threads");
  r.device = c.get_string("run.device");
  r.log_every = c.get_int("run.log_every");
  r.overlap_teacher = c.get_bool("run.overlap_teacher");
  r.dist_timeout = c.get_float("run.dist_timeout");
  const std::string& cache = c.get_string("run.cache_dir");
  r.cache_dir = cache.empty() ? default_cache_dir() : fs::path(cache);

  DataOptions& d = o.data;
  d.kind = c.get_string("data.kind");
  d.dataset = c.get_string("data.dataset");
  d.path = c.get_string("data.path");
  d.train_subset = c.get_int("data.train_subset");
  d.test_subset = c.get_int("data.test_subset");
  d.validation = c.get_int("data.validation");
  d.mean = c.get_float("data.mean");
  d.std = c.get_float("data.std");
  d.batch_size = c.get_int("data.batch_size");
  d.eval_batch_size = c.get_int("data.eval_batch_size");

  o.model = model_options(c, "model");
  o.train = train_section(c, "train");

  TeacherOptions& t = o.teacher;
  t.path = c.get_string("teacher.path");
  t.source.api.model = c.get_string("teacher.api_model");
  t.source.api.concurrency = c.get_int("teacher.api_concurrency");
  t.source.api.max_retries = c.get_int("teacher.api_retries");
  t.source.api.timeout = c.get_float("teacher.api_timeout");
  t.source.api.max_requests = c.get_int("teacher.api_max_requests");
  t.source.api.max_tokens = c.get_int("teacher.api_max_tokens");
  t.source.api.batch = c.get_int("teacher.api_batch");
  t.source.api_key_env = c.get_string("teacher.api_key_env");
  t.model = model_options(c, "teacher.model");
  t.train = train_section(c, "teacher.train");

  DistillOptions& k = o.distill;
  k.temperature = c.get_float("distill.temperature");
  k.alpha = c.get_float("distill.alpha");
  k.cache = c.get_bool("distill.cache");
  k.teacher_precision = parse_precision(c.get_string("distill.teacher_precision"), "distill.teacher_precision");
  k.loss = c.get_string("distill.loss");
  const double beta = c.get_float("distill.beta");
  k.weight = beta >= 0 ? beta : divergence_row(k.loss).default_weight;
  k.top_k = c.get_int("distill.top_k");
  k.method = c.get_string("distill.method");
  k.on_policy = c.get_float("distill.on_policy");
  k.init_from_teacher = c.get_bool("distill.init_from_teacher");
  k.prompt_tokens = c.get_int("distill.prompt_tokens");
  k.sample_temperature = c.get_float("distill.sample_temperature");
  k.sample_top_p = c.get_float("distill.sample_top_p");
  k.prompts = c.get_string("distill.prompts");

  TextOptions& x = o.text;
  x.corpus = c.get_string("text.corpus");
  x.tokenizer = c.get_string("text.tokenizer");
  x.vocab_size = c.get_int("text.vocab_size");
  x.model_type = c.get_string("text.model_type");
  x.seq_len = c.get_int("text.seq_len");
  x.validation_fraction = c.get_float("text.validation_fraction");
  x.train_tokens = c.get_int("text.train_tokens");
  x.val_tokens = c.get_int("text.val_tokens");

  o.demo_seeds = c.get_int("demo.seeds");
  o.watermark.scheme = parse_watermark_scheme(c.get_string("serve.watermark"));
  o.watermark.gamma = c.get_float("serve.watermark_gamma");
  o.watermark.delta = c.get_float("serve.watermark_delta");
  o.watermark.context = c.get_int("serve.watermark_context");
  check_watermark_options(o.watermark);
  o.dawn_share = c.get_float("serve.dawn_share");
  DetectPolicy& g = o.guard;
  g.enabled = c.get_bool("guard.detect");
  g.trust_forwarded = c.get_bool("guard.trust_forwarded");
  g.store_prompts = c.get_bool("guard.store_prompts");
  g.reference = c.get_string("guard.reference");
  g.hour = c.get_float("guard.hour");
  g.interval = c.get_float("guard.interval");
  g.min_requests = c.get_int("guard.min_requests");
  for (int i = 0; i < kSignalKinds; ++i) {
    const std::string p = std::string("guard.signal.") + signal_name(SignalKind(i));
    g.signals[size_t(i)] = {c.get_float(p + ".threshold"), c.get_float(p + ".weight")};
  }
  g.link_address = c.get_float("guard.link.address");
  g.link_user_agent = c.get_float("guard.link.user_agent");
  g.link_template = c.get_float("guard.link.template");
  g.link_timing = c.get_float("guard.link.timing");
  g.link_shape = c.get_float("guard.link.shape");
  g.link_threshold = c.get_float("guard.link.threshold");
  g.link_max_group = c.get_int("guard.link.max_group");
  g.observe = c.get_float("guard.response.observe");
  g.throttle = c.get_float("guard.response.throttle");
  g.strip = c.get_float("guard.response.strip");
  g.mark = c.get_float("guard.response.mark");
  g.block = c.get_float("guard.response.block");
  g.throttle_factor = c.get_float("guard.response.throttle_factor");
  g.throttle_rpm = c.get_int("guard.response.throttle_rpm");
  g.strip_top = c.get_int("guard.response.strip_top");
  g.mark_delta = c.get_float("guard.response.mark_delta");
  IntelOptions& n = o.intel;
  n.taxii = c.get_bool("intel.taxii");
  n.provider = c.get_string("intel.provider");
  n.pseudonymise = c.get_bool("intel.pseudonymise");
  n.group_secret = c.get_string("intel.group_secret");
  n.tlp = c.get_string("intel.tlp");
  n.share_at = response_from_name(c.get_string("intel.share_at"));
  n.min_confidence = c.get_int("intel.min_confidence");
  n.act_address = response_from_name(c.get_string("intel.act.address"));
  n.act_user_agent = response_from_name(c.get_string("intel.act.user_agent"));
  n.act_account = response_from_name(c.get_string("intel.act.account"));
  n.act_template = response_from_name(c.get_string("intel.act.template"));
  n.act_shape = response_from_name(c.get_string("intel.act.shape"));
  n.pull = c.get_bool("intel.pull");
  n.pull_interval = c.get_float("intel.pull_interval");
  n.publish_interval = c.get_float("intel.publish_interval");
  g.check();
  o.config_ = std::make_shared<const Config>(c);
  return o;
}

std::string Options::digest(const std::string& prefix) const {
  if (!config_) fail("these options were not read from a configuration (read_options): no digest of ", prefix);
  return config_->digest(prefix);
}

std::string Options::toml() const {
  if (!config_) fail("these options were not read from a configuration (read_options): no TOML");
  return config_->to_toml();
}

Options Options::with_seed(int64_t seed) const {
  Config c = *config_;
  c.set_value("run.seed", seed);
  return read_options(c);
}

}  // namespace retort
