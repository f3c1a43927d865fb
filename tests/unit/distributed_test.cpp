// The launch environment (torchrun, Slurm, by hand) and the sharding of batches across ranks.
// The collectives themselves run in tests/e2e/distributed_test.sh, with real processes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "retort/distributed.h"
#include "retort/labels.h"
#include "retort/sharded_source.h"
#include "test_util.h"

namespace retort {
namespace {
using namespace retort::testing;

LaunchEnv env_of(std::map<std::string, std::string> vars) {
  return launch_env_from([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnv, NothingSetIsOneProcess) {
  LaunchEnv e = env_of({});
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.launcher, "single");
}

TEST(LaunchEnv, TorchrunVariables) {
  LaunchEnv e = env_of({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "head"},
                        {"MASTER_PORT", "29511"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "head");
  EXPECT_EQ(e.master_port, 29511);
  EXPECT_EQ(e.launcher, "env");
  EXPECT_TRUE(e.agent_store);
}

TEST(LaunchEnv, SlurmVariables) {
  LaunchEnv e = env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"},
                        {"SLURM_JOB_NODELIST", "gpu[007-010,12],cpu1"}});
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "gpu007");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_FALSE(e.agent_store);
  // torchrun's variables win over Slurm's (torchrun inside an allocation).
  EXPECT_EQ(env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"RANK", "0"}, {"WORLD_SIZE", "2"},
                    {"MASTER_ADDR", "127.0.0.1"}}).world_size, 2);
}

TEST(LaunchEnv, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("n[03-05],m1"), "n03");
  EXPECT_EQ(first_slurm_host("rack[2,4]"), "rack2");
}

TEST(LaunchEnv, InconsistentValuesFail) {
  EXPECT_NE(error_of([] { env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}); })
                .find("rank 2 is outside the job's world of 2"), std::string::npos);
  EXPECT_NE(error_of([] { env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}}); }).find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(error_of([] { env_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}); })
                .find("RANK=x is not a count"), std::string::npos);
  EXPECT_NE(error_of([] { env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_PORT", "70000"}}); })
                .find("not a TCP port"), std::string::npos);
}

// A source of fixed batches: batch b has 2b + 5 rows; labels are text-like with ignored positions.
class FixedSource : public BatchSource {
 public:
  int64_t batches_per_epoch() const override { return 3; }
  Batch batch(int64_t epoch, int64_t b) const override {
    int64_t n = 2 * b + 5;
    Batch out;
    out.x = torch::arange(n * 4, torch::kInt64).view({n, 4});
    out.y = out.x.clone();
    out.y.select(1, 0).fill_(kIgnoreLabel);
    out.y[0].fill_(kIgnoreLabel);  // the first row has no targets at all
    out.index = torch::arange(n, torch::kInt64) + 100 * epoch;
    return out;
  }
};

TEST(ShardedSource, ShardsAreDisjointCoverTheBatchAndShareItsTargets) {
  FixedSource base;
  for (int world : {1, 2, 3}) {
    for (int64_t b = 0; b < base.batches_per_epoch(); ++b) {
      Batch full = base.batch(1, b);
      std::vector<torch::Tensor> xs, idx;
      double share = 0;
      for (int r = 0; r < world; ++r) {
        Batch part = ShardedSource(base, r, world).batch(1, b);
        xs.push_back(part.x);
        idx.push_back(part.index);
        share += part.share;
        double targets = (part.y != kIgnoreLabel).sum().item<double>();
        EXPECT_NEAR(part.share, targets / (full.y != kIgnoreLabel).sum().item<double>(), 1e-12);
      }
      EXPECT_TRUE(torch::equal(torch::cat(xs), full.x)) << "world " << world << " batch " << b;
      EXPECT_TRUE(torch::equal(torch::cat(idx), full.index));
      EXPECT_NEAR(share, 1.0, 1e-12);
    }
  }
  EXPECT_NE(error_of([&] { ShardedSource(base, 2, 2); }).find("shard 2 of 2"), std::string::npos);
}

TEST(ShardedSource, ImageLabelsShareByExamples) {
  ImageSet set = tiny_image_set(10, 3);
  Batcher batches(set, 10, /*shuffle=*/true, 7);
  Batch a = ShardedSource(batches, 0, 3).batch(0, 0), c = ShardedSource(batches, 2, 3).batch(0, 0);
  EXPECT_EQ(a.x.size(0), 3);
  EXPECT_EQ(c.x.size(0), 4);
  EXPECT_DOUBLE_EQ(a.share, 0.3);
  EXPECT_DOUBLE_EQ(c.share, 0.4);
}

TEST(DistSingleProcess, CollectivesAreNoOps) {
  EXPECT_FALSE(dist::active());
  EXPECT_TRUE(dist::is_main());
  torch::Tensor t = torch::ones({3});
  dist::all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t, torch::ones({3})));
  EXPECT_TRUE(dist::any(true));
  EXPECT_FALSE(dist::any(false));
  EXPECT_NE(error_of([] { GradientSync({torch::ones({2}, torch::requires_grad())}, 1 << 20); })
                .find("more than one rank"), std::string::npos);
}

}  // namespace
}  // namespace retort
