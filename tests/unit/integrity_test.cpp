// Files that prove they are whole: model folders, checkpoints and safetensors/GGUF exports carry
// a digest checked on load (damage -> one error naming the file and both digests; a file without
// one -> a warning), a damaged last checkpoint is passed over for the previous one, and the
// temporaries a killed writer left are removed when the folder is opened again.
// The damage is the pattern that once loaded silently: XOR 0x40 into every 4000th byte from
// offset 100,003 (files here are a few hundred kB, so the pattern lands in the weights).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/safetensors_io.h"
#include "retort/checkpoints.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/load_model.h"
#include "retort/model.h"
#include "retort/observers.h"
#include "retort/image_run.h"
#include "retort/teacher.h"
#include "retort/topk_cache.h"
#include "retort/trainer.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;
using retort::testing::tiny_gpt;
using json = nlohmann::json;

namespace {

// XOR 0x40 into bytes from, from + 4000, ...; returns how many bytes it changed.
int damage(const fs::path& path, size_t from = 100003) {
  std::string bytes = read_text(path);
  int changed = 0;
  for (size_t i = from; i < bytes.size(); i += 4000, ++changed) bytes[i] ^= 0x40;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return changed;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// How many times `part` occurs in `text`.
int count(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// An error that names `file`, says it is damaged and gives two digests, on one line.
void expect_damage_named(const std::string& msg, const fs::path& file) {
  EXPECT_TRUE(contains(msg, file.string())) << msg;
  EXPECT_TRUE(contains(msg, "is damaged")) << msg;
  EXPECT_EQ(count(msg, "fnv1a64:"), 2) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// An mlp on 28x28 images: ~200 kB of weights.
LoadedModel mlp_model() {
  torch::manual_seed(3);
  LoadedModel m;
  m.spec = {"mlp", {{"hidden", {64}}}};
  m.model = make_model(m.spec);
  return m;
}

torch::Tensor mlp_logits(ModelImpl& m) {
  torch::manual_seed(9);
  m.eval();
  torch::NoGradGuard no_grad;
  return m.forward(torch::randn({4, 1, 28, 28})).logits;
}

// What stderr shows while f runs.
std::string stderr_of(const std::function<void()>& f) {
  ::testing::internal::CaptureStderr();
  f();
  return ::testing::internal::GetCapturedStderr();
}

}  // namespace

// ---- model folders and exports ---------------------------------------------------------------

TEST(Integrity, DamagedModelPtIsRefusedNamingTheFileAndBothDigests) {
  TempDir tmp;
  LoadedModel m = mlp_model();
  save_model(*m.model, m.spec, tmp / "model");
  const fs::path weights = tmp / "model" / "model.pt";
  ASSERT_GT(damage(weights), 10);
  std::string msg = error_of([&] { load_model(tmp / "model"); });
  expect_damage_named(msg, weights);
  EXPECT_TRUE(contains(msg, "model.json")) << msg;
  EXPECT_THROW(load_model(tmp / "model"), Damaged);
}

TEST(Integrity, ModelFolderWithoutDigestLoadsWithOneWarning) {
  TempDir tmp;
  LoadedModel m = mlp_model();
  save_model(*m.model, m.spec, tmp / "model");
  json meta = json::parse(read_text(tmp / "model" / "model.json"));
  ASSERT_TRUE(meta.contains("weights_digest"));
  meta.erase("weights_digest");  // as an older retort wrote it
  atomic_write_text(tmp / "model" / "model.json", meta.dump(2));
  LoadedModel back;
  std::string err = stderr_of([&] { back = load_model(tmp / "model"); });
  EXPECT_TRUE(mlp_logits(*back.model).equal(mlp_logits(*m.model)));
  EXPECT_EQ(count(err, "\n"), 1) << err;
  EXPECT_TRUE(contains(err, "warning") && contains(err, (tmp / "model" / "model.pt").string()))
      << err;
}

TEST(Integrity, DamagedSafetensorsExportIsRefusedNamingTheFile) {
  TempDir tmp;
  export_safetensors(mlp_model(), tmp / "st", {});
  const fs::path file = tmp / "st" / "model.safetensors";
  ASSERT_GT(damage(file), 10);
  std::string msg = error_of([&] { load_model(tmp / "st"); });
  expect_damage_named(msg, file);
}

TEST(Integrity, SafetensorsWithoutRetortDigestLoadsWithOneWarning) {
  TempDir tmp;
  LoadedModel m = mlp_model();
  export_safetensors(m, tmp / "st", {});
  // The same file as another writer would leave it: no retort.digest in __metadata__.
  const fs::path file = tmp / "st" / "model.safetensors";
  std::string bytes = read_text(file);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  json header = json::parse(bytes.substr(8, n));
  ASSERT_TRUE(header["__metadata__"].contains(kSafetensorsDigestKey));
  header["__metadata__"].erase(kSafetensorsDigestKey);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t m_len = text.size();
  std::string out(reinterpret_cast<const char*>(&m_len), 8);
  out += text + bytes.substr(8 + n);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << out;

  LoadedModel back;
  std::string err = stderr_of([&] { back = load_model(tmp / "st"); });
  EXPECT_TRUE(mlp_logits(*back.model).equal(mlp_logits(*m.model)));
  EXPECT_EQ(count(err, "\n"), 1) << err;
  EXPECT_TRUE(contains(err, "warning") && contains(err, file.string())) << err;
}

TEST(Integrity, DamagedGgufExportIsRefusedNamingTheFile) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"d_model", 64}});  // ~400 kB in f32
  const fs::path file = tmp / "m.gguf";
  export_gguf(m, file, {});
  ASSERT_GT(damage(file), 10);
  std::string msg = error_of([&] { load_model(file); });
  expect_damage_named(msg, file);
}

TEST(Integrity, GgufWithoutRetortDigestLoadsWithOneWarning) {
  TempDir tmp;
  LoadedModel m = tiny_gpt({{"d_model", 64}});
  const fs::path file = tmp / "m.gguf";
  export_gguf(m, file, {});
  std::string bytes = read_text(file);
  const std::string key = "retort.digest";
  ASSERT_EQ(count(bytes, key), 1);
  bytes[bytes.find(key) + key.size() - 1] = 'X';  // the key is gone: a file another writer made
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  LoadedModel back;
  std::string err = stderr_of([&] { back = load_model(file); });
  torch::Tensor ids = torch::randint(0, 40, {2, 9});
  torch::NoGradGuard no_grad;
  back.model->eval();
  EXPECT_TRUE(back.model->forward(ids).logits.equal(m.model->forward(ids).logits));
  EXPECT_EQ(count(err, "\n"), 1) << err;
  EXPECT_TRUE(contains(err, "warning") && contains(err, file.string())) << err;
}

TEST(Integrity, FileDigestHashesLikeOneUpdateAndAHundredMegabytesFast) {
  TempDir tmp;
  std::string bytes(100 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(tmp / "big", std::ios::binary) << bytes;
  auto t0 = std::chrono::steady_clock::now();
  std::string digest = file_digest(tmp / "big");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(digest, digest_text(Hasher().update(bytes.data(), bytes.size())));
  EXPECT_LT(seconds, 1.0) << "100 MB took " << seconds << " s to hash";
  std::printf("file_digest: 100 MB in %.3f s\n", seconds);
}

// ---- checkpoints ----------------------------------------------------------------------------

namespace {

// A run folder of a wide mlp on 8x8 images (checkpoints of ~1 MB with the optimizer).
struct CheckpointRun {
  TempDir tmp;
  ImageSet data = retort::testing::tiny_image_set(100);
  Batcher batches{data, 16, true, 1};  // 7 batches per epoch
  ModelSpec spec{"mlp",
                 {{"in_channels", 1},
                  {"height", 8},
                  {"width", 8},
                  {"num_classes", 4},
                  {"hidden", {512}},
                  {"dropout", 0.1}}};
  RunSpec run;

  CheckpointRun() {
    run.dir = tmp / "run";
    run.label = "test";
    run.resume = true;
    fs::create_directories(run.dir / "checkpoints");
  }
  std::unique_ptr<Trainer> trainer() {
    TrainOptions o;
    o.epochs = 3;
    o.lr = 0.01;
    o.seed = 5;
    torch::manual_seed(42);
    return std::make_unique<Trainer>(make_model(spec), batches, make_kd_objective(0, 1), nullptr,
                                     o);
  }
  fs::path last() const { return run.dir / "checkpoints" / "last.pt"; }
};

void expect_same_weights(ModelImpl& a, ModelImpl& b) {
  auto sa = model_state(a), sb = model_state(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_TRUE(sa[i].equal(sb[i]))
        << "tensor " << i << " max diff " << (sa[i] - sb[i]).abs().max().item<double>();
}

}  // namespace

TEST(CheckpointIntegrity, DamagedLastCheckpointResumesFromThePreviousOneSayingSo) {
  CheckpointRun r;
  auto straight = r.trainer();
  straight->run();

  // Epoch 1 ends (checkpoint at step 7), Ctrl-C at step 10 (checkpoint at step 10).
  auto first = r.trainer();
  first->stop_after_steps(10);
  ::testing::internal::CaptureStderr();
  EXPECT_THROW(train_in_folder(*first, r.run, {}), Interrupted);
  ::testing::internal::GetCapturedStderr();
  const fs::path previous = previous_checkpoint(r.last());
  ASSERT_TRUE(fs::exists(previous)) << "only one checkpoint is kept";
  ASSERT_GT(damage(r.last()), 10);

  // Resumed from previous.pt by hand: the reference.
  auto by_hand = r.trainer();
  by_hand->load_checkpoint(previous);
  EXPECT_EQ(by_hand->step(), 7);

  auto resumed = r.trainer();
  ::testing::internal::CaptureStderr();
  train_in_folder(*resumed, r.run, {});
  std::string err = ::testing::internal::GetCapturedStderr();
  size_t line = err.find("resuming from");
  ASSERT_NE(line, std::string::npos) << err;
  std::string said = err.substr(err.rfind('\n', line) + 1);
  said = said.substr(0, said.find('\n'));
  EXPECT_TRUE(contains(said, r.last().string() + " is damaged")) << said;
  EXPECT_TRUE(contains(said, "resuming from " + previous.string() + " (epoch 2, step 7)")) << said;

  by_hand->run();
  expect_same_weights(*resumed->model_ptr(), *by_hand->model_ptr());
  expect_same_weights(*resumed->model_ptr(),
                      *straight->model_ptr());  // and the same as never stopped
}

TEST(CheckpointIntegrity, DamagedCheckpointIsRefusedNamingTheFileAndBothDigests) {
  CheckpointRun r;
  auto t = r.trainer();
  t->stop_after_steps(3);
  EXPECT_THROW(t->run(), Interrupted);
  t->save_checkpoint(r.last());
  EXPECT_TRUE(fs::exists(checkpoint_sidecar(r.last())));
  ASSERT_GT(damage(r.last()), 10);
  std::string msg = error_of([&] { r.trainer()->load_checkpoint(r.last()); });
  expect_damage_named(msg, r.last());
  // Nothing else to fall back on: the run stops and says why.
  msg = error_of([&] { load_newest_good_checkpoint(*r.trainer(), r.last(), nullptr); });
  EXPECT_TRUE(contains(msg, "no usable checkpoint") && contains(msg, r.last().string())) << msg;
}

TEST(CheckpointIntegrity, CheckpointWithoutSidecarLoadsWithOneWarning) {
  CheckpointRun r;
  auto t = r.trainer();
  t->stop_after_steps(3);
  EXPECT_THROW(t->run(), Interrupted);
  t->save_checkpoint(r.last());
  fs::remove(checkpoint_sidecar(r.last()));  // as an older retort left it
  auto back = r.trainer();
  std::string err = stderr_of([&] { back->load_checkpoint(r.last()); });
  EXPECT_EQ(back->step(), 3);
  expect_same_weights(*back->model_ptr(), *t->model_ptr());
  EXPECT_EQ(count(err, "\n"), 1) << err;
  EXPECT_TRUE(contains(err, "warning") && contains(err, r.last().string())) << err;
}

// ---- temporaries a killed writer left --------------------------------------------------------

namespace {

// A temporary as atomic_write names it, of a writer with `pid`, last written `age` ago.
fs::path temporary(const fs::path& dir, const std::string& name, long pid,
                   std::chrono::seconds age) {
  fs::create_directories(dir);
  fs::path p = dir / cat(".", name, ".tmp", pid, "-12345");
  std::ofstream(p) << "half a file";
  fs::last_write_time(p, fs::file_time_type::clock::now() - age);
  return p;
}

constexpr long kGonePid = 999999999;  // above any pid_max: no such process
constexpr std::chrono::seconds kHourAgo{3600};

}  // namespace

TEST(OrphanedTemporaries, OnlyThoseOfAGoneWriterOlderThanThisProcessAndOfTheGivenNamesGo) {
  TempDir tmp;
  fs::path orphan = temporary(tmp.path(), "logits-ab12.bin", kGonePid, kHourAgo);
  fs::path live =
      temporary(tmp.path(), "logits-cd34.bin", ::getpid(), kHourAgo);  // its writer runs
  fs::path fresh = temporary(tmp.path(), "logits-ef56.bin", kGonePid,
                             std::chrono::seconds(-5));                     // newer than us
  fs::path other = temporary(tmp.path(), "notes.txt", kGonePid, kHourAgo);  // not the names asked
  std::ofstream(tmp / "logits-ab12.bin.tmp") << "not a temporary of atomic_write";
  int removed = 0;
  std::string err = stderr_of(
      [&] { removed = remove_orphaned_temporaries(tmp.path(), std::regex(R"(logits-\w+\.bin)")); });
  EXPECT_EQ(removed, 1);
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_TRUE(fs::exists(live) && fs::exists(fresh) && fs::exists(other) &&
              fs::exists(tmp / "logits-ab12.bin.tmp"));
  EXPECT_TRUE(contains(err, "removed 1 temporary file") && contains(err, tmp.path().string()))
      << err;
}

TEST(OrphanedTemporaries, LogitCacheTopkCacheAndRunFolderClearThemWhenOpened) {
  TempDir tmp;
  // The dense logit cache.
  fs::path logits = temporary(tmp / "cache", "logits-0123456789abcdef.bin", kGonePid, kHourAgo);
  torch::manual_seed(1);
  ModelTeacher teacher(make_model(
      {"mlp",
       {{"in_channels", 1}, {"height", 8}, {"width", 8}, {"num_classes", 4}, {"hidden", {8}}}}));
  stderr_of([&] {
    load_or_build_logit_cache(teacher, retort::testing::tiny_image_set(20), tmp / "cache");
  });
  EXPECT_FALSE(fs::exists(logits));

  // The top-k cache, resumed (same key) and fresh.
  TopkCacheInfo info;
  info.key = "k";
  info.k = 2;
  info.seq_len = 3;
  info.windows = 4;
  info.vocab_size = 10;
  info.windows_per_shard = 2;
  { TopkCacheWriter w(tmp / "topk", info); }
  fs::path shard = temporary(tmp / "topk", "shard-00001.bin", kGonePid, kHourAgo);
  fs::path meta = temporary(tmp / "topk", "meta.json", kGonePid, kHourAgo);
  stderr_of([&] { TopkCacheWriter again(tmp / "topk", info); });
  EXPECT_FALSE(fs::exists(shard) || fs::exists(meta));

  // A run folder: checkpoints, run.json, the model.
  RunSpec spec;
  spec.dir = tmp / "run";
  spec.config_toml = "";
  fs::path ckpt = temporary(spec.dir / "checkpoints", "last.pt", kGonePid, kHourAgo);
  fs::path run_json = temporary(spec.dir, "run.json", kGonePid, kHourAgo);
  fs::path model = temporary(spec.dir / "model", "model.pt", kGonePid, kHourAgo);
  stderr_of([&] { begin_run(spec); });
  EXPECT_FALSE(fs::exists(ckpt) || fs::exists(run_json) || fs::exists(model));
}
