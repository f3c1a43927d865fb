// Data-parallel training on PyTorch's c10d: the launch environment (torchrun, Slurm or
// plain variables), the process group (TCPStore + ProcessGroupGloo), the few collectives
// retort needs, and bucketed gradient all-reduce that overlaps with the backward pass. Each
// rank's slice of the data is retort/sharded_source.h (data).
//
// One process with no launch variables set is world 1: every call here is then a no-op
// and the code paths are those of a plain single-process run.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "retort/error.h"

namespace retort {

// Where this process stands in a job, read from what the launcher set.
struct LaunchEnv {
  int rank = 0;                       // global rank, 0 .. world_size - 1
  int world_size = 1;                 // processes in the job
  int local_rank = 0;                 // rank on this node
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "single";    // single | env (torchrun, torch.distributed.launch, by hand) | slurm
  bool agent_store = false;           // torchrun's agent already serves the TCPStore at master_addr:master_port
                                      // (TORCHELASTIC_USE_AGENT_STORE=True): join it as a client
};

// torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT win; else Slurm's
// SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID with MASTER_ADDR from the environment or the
// first host of SLURM_JOB_NODELIST (SLURM_STEP_NODELIST); else a single process. `get` reads
// one variable (nullptr: unset), so tests can feed any environment. Inconsistent values (rank
// outside [0, world), a world without MASTER_ADDR under torchrun, a bad number) -> Error.
LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get);
LaunchEnv launch_env();  // from this process's environment
// The first host of a Slurm node list: "node[03-05,9],gpu1" -> "node03".
std::string first_slurm_host(const std::string& nodelist);

// A collective failed: a peer died, was killed, or did not answer within the timeout.
class PeerLost : public Error {
 public:
  using Error::Error;
};

namespace dist {

// Joins the job described by `env` (rank 0 hosts the TCPStore at master_addr:master_port),
// with `timeout` as the longest any collective may wait for the others. World 1: nothing.
// A CUDA device uses NCCL when libtorch was built with it; otherwise gloo.
void init(const LaunchEnv& env, std::chrono::milliseconds timeout);
bool active();         // world_size() > 1
int rank();
int world_size();
int local_rank();
bool is_main();        // rank 0: the one that writes files and prints progress
std::chrono::milliseconds timeout();
std::string describe();  // "rank 1 of 2 (gloo, launched by env)" or "single process"

// Collectives on CPU tensors (in place); each throws PeerLost naming this rank. World 1: no-ops.
void all_reduce_sum(std::vector<torch::Tensor>& tensors);
void all_reduce_sum(torch::Tensor& tensor);
void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
void barrier();
// Every rank's `flag`, OR-ed (e.g. "someone was interrupted").
bool any(bool flag);

}  // namespace dist

// Averages gradients across ranks during backward: parameters are grouped into buckets of
// about `bucket_bytes` in reverse order (the order backward produces their gradients); a hook
// on each parameter copies its gradient into the bucket, and a full bucket is all-reduced
// (summed) at once while backward goes on, in bucket order on every rank. finish() reduces
// what is left (parameters that got no gradient count as zeros), waits, and writes the sums
// back into .grad. The caller weights each rank's loss (Batch::share) so that the sum is the
// global mean. Construct only when dist::active().
class GradientSync {
 public:
  GradientSync(std::vector<torch::Tensor> params, int64_t bucket_bytes);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;
  void begin();   // before backward
  void finish();  // after backward
  int64_t bytes_per_step() const;  // gradient bytes each rank sends into the all-reduce
  int64_t buckets() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace retort
