// Every configuration key retort understands, with its default and help. The
// defaults are the demo recipe: a CNN teacher distilled into a small MLP.
#include "retort/config.h"

namespace retort {

namespace {

using V = std::vector<int64_t>;

void add_model_keys(ConfigSchema& s, const std::string& p, const std::string& name, V hidden, V channels,
                    double dropout, const std::string& who) {
  s.add({p + ".name", ValueKind::String, name, "architecture of the " + who + ": mlp | cnn"});
  s.add({p + ".hidden", ValueKind::IntList, hidden, "widths of the hidden fully-connected layers", 1, {}});
  s.add({p + ".channels", ValueKind::IntList, channels, "cnn only: channels of each conv stage (each halves H and W)", 1, {}});
  s.add({p + ".dropout", ValueKind::Float, dropout, "dropout probability after each hidden layer", 0.0, 0.95});
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
}

ConfigSchema build() {
  ConfigSchema s;
  s.add({"run.name", ValueKind::String, std::string(""), "run folder name under run.dir (empty: the command's default)"});
  s.add({"run.dir", ValueKind::String, std::string("runs"), "where run folders are made"});
  s.add({"run.seed", ValueKind::Int, int64_t{0}, "seed of initialisation, shuffling, augmentation and dropout", 0, {}});
  s.add({"run.threads", ValueKind::Int, int64_t{0}, "intra-op threads (0: $OMP_NUM_THREADS, else all cores)", 0, 1024});
  s.add({"run.device", ValueKind::String, std::string("cpu"), "torch device: cpu | cuda | cuda:N"});
  s.add({"run.log_every", ValueKind::Int, int64_t{50}, "write a step line to metrics.jsonl every N steps", 1, {}});
  s.add({"run.cache_dir", ValueKind::String, std::string(""), "teacher cache folder (empty: $XDG_CACHE_HOME/retort)"});

  s.add({"data.dataset", ValueKind::String, std::string("fashion-mnist"), "dataset name, used in reports"});
  s.add({"data.path", ValueKind::String, std::string("/usr/share/datasets/fashion-mnist"),
         "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"});
  s.add({"data.train_subset", ValueKind::Int, int64_t{0}, "use only the first N training examples (0: all)", 0, {}});
  s.add({"data.test_subset", ValueKind::Int, int64_t{0}, "use only the first N test examples (0: all)", 0, {}});
  s.add({"data.mean", ValueKind::Float, 0.2860, "normalisation mean of pixel/255"});
  s.add({"data.std", ValueKind::Float, 0.3530, "normalisation standard deviation of pixel/255", 1e-6, {}});
  s.add({"data.batch_size", ValueKind::Int, int64_t{128}, "training batch size", 1, 1 << 20});
  s.add({"data.eval_batch_size", ValueKind::Int, int64_t{256}, "evaluation batch size (256 ran a CNN 1.7x faster than 1000 here)", 1, 1 << 20});

  // The model a command trains (the student, for distill and demo).
  add_model_keys(s, "model", "mlp", V{128}, V{32, 64}, 0.0, "model trained (the student when distilling)");
  add_train_keys(s, "train", "sgd", 8, 0.15, 1e-4, 100, "model trained (the student when distilling)");

  // The teacher: a trained model on disk for distill; what demo trains first.
  s.add({"teacher.path", ValueKind::String, std::string(""), "distill: folder of a trained teacher model or run"});
  add_model_keys(s, "teacher.model", "cnn", V{512}, V{32, 64}, 0.3, "teacher (demo)");
  add_train_keys(s, "teacher.train", "adamw", 6, 2e-3, 1e-4, 100, "teacher (demo)");

  s.add({"distill.temperature", ValueKind::Float, 1.0, "softmax temperature T of the soft targets (loss scaled by T^2)", 1e-3, 1000.0});
  s.add({"distill.alpha", ValueKind::Float, 0.9, "weight of the soft-target KL; cross-entropy gets 1 - alpha", 0.0, 1.0});
  s.add({"distill.cache", ValueKind::Bool, true, "cache the teacher's logits on the training set on disk"});

  s.add({"demo.seeds", ValueKind::Int, int64_t{3}, "seeds per student (report mean +- std)", 1, 100});
  return s;
}

}  // namespace

const ConfigSchema& retort_schema() {
  static const ConfigSchema schema = build();
  return schema;
}

}  // namespace retort
