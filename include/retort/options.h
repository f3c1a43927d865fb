// The configuration as typed options, read once at the edge (the CLI) from a Config checked
// against the schema (retort/config_schema.h, which holds each key's default and help). One
// struct per section; the modules below take these structs, never string keys. The values come
// only from read_options: the schema alone holds the defaults. A run folder
// is still keyed by the digests of the sections it depends on (Options::digest).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "retort/config.h"
#include "retort/data.h"
#include "retort/teacher_source.h"
#include "retort/trainer.h"
#include "retort/intel_options.h"
#include "retort/policy.h"
#include "retort/watermark.h"

namespace retort {

// run.*: where runs go and how they execute.
struct RunOptions {
  std::string name, dir;  // run folder dir/name (name empty: the command's default)
  int64_t seed = 0;
  int64_t threads = 0;    // 0: $OMP_NUM_THREADS, else all cores
  std::string device;     // cpu | cuda | cuda:N
  int64_t log_every = 0;  // metrics.jsonl step lines
  bool overlap_teacher = false;
  double dist_timeout = 0;          // seconds
  std::filesystem::path cache_dir;  // teacher caches (resolved: never empty)
};

// data.*: the dataset and its batching.
struct DataOptions {
  std::string kind;  // images | text
  std::string dataset, path;
  int64_t train_subset = 0, test_subset = 0;
  int64_t validation = 0;    // > 0: the last N training images replace the test set (tuning)
  double mean = 0, std = 1;  // pixel normalisation
  int64_t batch_size = 0, eval_batch_size = 0;
};

// model.* and teacher.model.*: an architecture.
struct ModelOptions {
  std::string section;  // "model" | "teacher.model": for messages and digests
  std::string name;     // mlp | cnn | tree | gpt
  std::vector<int64_t> hidden, channels;
  double dropout = 0;
  int64_t d_model = 0, layers = 0, heads = 0, kv_heads = 0, d_ff = 0;  // gpt
  bool tie_embeddings = false;
  int64_t depth = 0;                            // tree: levels of inner nodes
  double beta = 0, split_penalty = 0;           // tree: inverse temperature, split regularizer lambda
};

// train.* and teacher.train.*: how a model is optimised, and its batch augmentation.
struct TrainSection {
  std::string section;  // "train" | "teacher.train"
  TrainOptions train;
  AugmentOptions augment;
};

// teacher.*: where the teacher comes from; what `retort demo` trains as the teacher.
struct TeacherOptions {
  std::string path;             // a teacher source (retort/teacher_source.h)
  TeacherSourceOptions source;  // the openai: settings
  ModelOptions model;
  TrainSection train;
};

// distill.*: the objective and the signal taken from the teacher.
struct DistillOptions {
  double temperature = 0, alpha = 0;
  bool cache = false;
  Precision teacher_precision = Precision::Fp32;
  std::string loss;
  double weight = 0;  // distill.beta, or the divergence's default when beta < 0
  int64_t top_k = 0;
  std::string method;  // logits | sequence
  double on_policy = 0;
  bool init_from_teacher = false;
  int64_t prompt_tokens = 0;
  double sample_temperature = 0, sample_top_p = 0;
  std::string prompts;  // JSONL of prompts for sequence KD (empty: training windows)
};

// text.*: the corpus and its tokenizer.
struct TextOptions {
  std::string corpus, tokenizer, model_type;
  int64_t vocab_size = 0, seq_len = 0;
  double validation_fraction = 0;
  int64_t train_tokens = 0, val_tokens = 0;
};

struct Options {
  RunOptions run;
  DataOptions data;
  ModelOptions model;  // the model a command trains (the student when distilling)
  TrainSection train;
  TeacherOptions teacher;
  DistillOptions distill;
  TextOptions text;
  int64_t demo_seeds = 0;
  WatermarkOptions watermark;  // serve.watermark* (scheme none: no marking)
  double dawn_share = 0;       // serve.dawn_share (classifiers, when marking)
  DetectPolicy guard;          // guard.*: campaign detection and responses (retort serve)
  IntelOptions intel;          // intel.*: threat-intel exchange with partners (retort serve, retort intel)

  std::string toml() const;  // the resolved configuration, as written to config.toml
  // The digest of the keys under `prefix` ("distill.", "model.", "run.seed"): a run folder made
  // with other values there is another run.
  std::string digest(const std::string& prefix) const;
  // These options with run.seed = `seed` (digests and toml() follow).
  Options with_seed(int64_t seed) const;

 private:
  std::shared_ptr<const Config> config_;
  friend Options read_options(const Config& c);
};

// Reads every section of `c` (values already checked against the schema); a value the schema
// cannot check alone (a precision name) -> Error naming its key.
Options read_options(const Config& c);

}  // namespace retort
