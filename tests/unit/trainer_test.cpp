// Trainer: learning, checkpoint round trip, crash + resume equals an uninterrupted run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "retort/error.h"
#include "retort/eval.h"
#include "retort/model.h"
#include "retort/observers.h"
#include "retort/trainer.h"
#include "test_util.h"

using namespace retort;
using retort::testing::TempDir;

namespace {

ModelSpec tiny_mlp(double dropout = 0.0) {
  return {"mlp", {{"in_channels", 1}, {"height", 8}, {"width", 8}, {"num_classes", 4}, {"hidden", {16}},
                  {"dropout", dropout}}};
}

TrainOptions opts(int64_t epochs = 3) {
  TrainOptions o;
  o.epochs = epochs;
  o.lr = 0.01;
  o.warmup_steps = 3;
  o.seed = 5;
  return o;
}

ModelPtr fresh(const ModelSpec& spec) {
  torch::manual_seed(42);
  return make_model(spec);
}

void expect_same_weights(ModelImpl& a, ModelImpl& b) {
  auto sa = model_state(a), sb = model_state(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_TRUE(sa[i].equal(sb[i])) << "tensor " << i << " max diff " << (sa[i] - sb[i]).abs().max().item<double>();
}

}  // namespace

TEST(Trainer, LearnsTheSyntheticTask) {
  ImageSet data = retort::testing::tiny_image_set(256);
  Batcher batches(data, 32, true, 1);
  ModelPtr m = fresh(tiny_mlp());
  double before = accuracy(predict_logits(*m, data), data.labels);
  Trainer t(m, batches, make_kd_objective(0, 1), nullptr, opts(5));
  t.run();
  double after = accuracy(predict_logits(*m, data), data.labels);
  EXPECT_GT(after, 0.95) << "before " << before;
  EXPECT_EQ(t.step(), 5 * 8);
  EXPECT_TRUE(t.finished());
}

TEST(Trainer, NeedsATeacherWhenTheObjectiveDoes) {
  ImageSet data = retort::testing::tiny_image_set(16);
  Batcher batches(data, 4, true, 1);
  EXPECT_THROW(Trainer(fresh(tiny_mlp()), batches, make_kd_objective(0.5, 2), nullptr, opts()), Error);
}

TEST(Checkpoint, RoundTripRestoresWeightsOptimizerAndPosition) {
  TempDir tmp;
  ImageSet data = retort::testing::tiny_image_set(64);
  Batcher batches(data, 16, true, 1);
  Trainer a(fresh(tiny_mlp()), batches, make_kd_objective(0, 1), nullptr, opts(2));
  a.stop_after_steps(5);
  EXPECT_THROW(a.run(), Interrupted);
  a.save_checkpoint(tmp / "c.pt");
  Trainer b(fresh(tiny_mlp()), batches, make_kd_objective(0, 1), nullptr, opts(2));
  b.load_checkpoint(tmp / "c.pt");
  EXPECT_EQ(b.step(), 5);
  EXPECT_EQ(b.epoch(), 1);
  expect_same_weights(a.model(), b.model());
  // Same optimizer state: both continue identically.
  a.stop_after_steps(-1);
  a.run();
  b.run();
  expect_same_weights(a.model(), b.model());
  // A different seed is refused.
  TrainOptions other = opts(2);
  other.seed = 99;
  Trainer c(fresh(tiny_mlp()), batches, make_kd_objective(0, 1), nullptr, other);
  EXPECT_THROW(c.load_checkpoint(tmp / "c.pt"), Error);
  EXPECT_THROW(c.load_checkpoint(tmp / "missing.pt"), Error);
}

// Interrupted mid-epoch (checkpoint written by on_interrupt, as Ctrl-C does) or
// killed (only the last end-of-epoch checkpoint survives): both resume to the
// same final weights as an uninterrupted run, dropout included.
class ResumeTest : public ::testing::TestWithParam<bool> {};

TEST_P(ResumeTest, ResumedRunEndsWithTheSameWeightsAsUninterrupted) {
  bool graceful = GetParam();
  TempDir tmp;
  ImageSet data = retort::testing::tiny_image_set(100);
  Batcher batches(data, 16, true, 1, AugmentOptions{1, true}, data.black);  // 7 batches per epoch
  ModelSpec spec = tiny_mlp(/*dropout=*/0.2);

  Trainer straight(fresh(spec), batches, make_kd_objective(0, 1), nullptr, opts(3));
  straight.run();

  auto ckpt = tmp / "last.pt";
  {
    Trainer first(fresh(spec), batches, make_kd_objective(0, 1), nullptr, opts(3));
    if (graceful) {
      first.add_observer(std::make_shared<CheckpointObserver>(ckpt));
    } else {
      // Only epoch-end checkpoints: a kill loses the partial epoch.
      struct EpochOnly : Observer {
        std::filesystem::path p;
        void on_epoch(Trainer& t, EpochInfo&) override { t.save_checkpoint(p); }
      };
      auto o = std::make_shared<EpochOnly>();
      o->p = ckpt;
      first.add_observer(o);
    }
    first.stop_after_steps(7 + 3);  // epoch 2, batch 4
    EXPECT_THROW(first.run(), Interrupted);
  }
  Trainer resumed(fresh(spec), batches, make_kd_objective(0, 1), nullptr, opts(3));
  resumed.load_checkpoint(ckpt);
  EXPECT_EQ(resumed.step(), graceful ? 10 : 7);
  resumed.run();
  EXPECT_EQ(resumed.step(), straight.step());
  expect_same_weights(straight.model(), resumed.model());
}

INSTANTIATE_TEST_SUITE_P(GracefulAndKilled, ResumeTest, ::testing::Values(true, false));

TEST(Schedule, WarmupThenCosineToZero) {
  TrainOptions o;
  o.lr = 1.0;
  o.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 0, 104), 0.25);
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 3, 104), 1.0);
  EXPECT_NEAR(scheduled_lr(o, 4, 104), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(o, 54, 104), 0.5, 1e-12);
  EXPECT_NEAR(scheduled_lr(o, 104, 104), 0.0, 1e-12);
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 80, 104), 1.0);
}
