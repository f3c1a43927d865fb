// The launch environment, the c10d process group and gradient buckets.
#include "retort/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <mutex>

namespace retort {

// ---- the launch environment --------------------------------------------------------

namespace {

int env_int(const std::function<const char*(const char*)>& get, const char* name, int fallback) {
  const char* v = get(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > (1 << 30)) fail("environment variable ", name, "=", v, " is not a count");
  return static_cast<int>(x);
}

std::string env_str(const std::function<const char*(const char*)>& get, const char* name, const std::string& fallback) {
  const char* v = get(name);
  return v && *v ? std::string(v) : fallback;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Hosts are separated by commas outside brackets; a bracket holds ranges "03-05" or values.
  std::string first;
  int depth = 0;
  for (char ch : nodelist) {
    if (ch == ',' && depth == 0) break;
    if (ch == '[') ++depth;
    if (ch == ']') --depth;
    first += ch;
  }
  size_t open = first.find('[');
  if (open == std::string::npos) return first;
  std::string prefix = first.substr(0, open), inside = first.substr(open + 1);
  inside = inside.substr(0, inside.find(']'));
  std::string item = inside.substr(0, inside.find(','));
  return prefix + item.substr(0, item.find('-'));
}

LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get) {
  LaunchEnv e;
  if (get("WORLD_SIZE") || get("RANK")) {
    e.launcher = "env";
    e.world_size = env_int(get, "WORLD_SIZE", 1);
    e.rank = env_int(get, "RANK", 0);
    e.local_rank = env_int(get, "LOCAL_RANK", e.rank);
    e.agent_store = env_str(get, "TORCHELASTIC_USE_AGENT_STORE", "") == "True";
    if (e.world_size > 1 && !get("MASTER_ADDR"))
      fail("WORLD_SIZE=", e.world_size, " but MASTER_ADDR is not set: start the job with torchrun, or set MASTER_ADDR "
           "(and MASTER_PORT) to the address of rank 0");
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    e.launcher = "slurm";
    e.world_size = env_int(get, "SLURM_NTASKS", 1);
    e.rank = env_int(get, "SLURM_PROCID", 0);
    e.local_rank = env_int(get, "SLURM_LOCALID", 0);
    std::string nodes = env_str(get, "SLURM_STEP_NODELIST", env_str(get, "SLURM_JOB_NODELIST", ""));
    e.master_addr = env_str(get, "MASTER_ADDR", nodes.empty() ? e.master_addr : first_slurm_host(nodes));
  }
  e.master_addr = env_str(get, "MASTER_ADDR", e.master_addr);
  e.master_port = env_int(get, "MASTER_PORT", e.master_port);
  if (e.world_size < 1) fail("the job has world size ", e.world_size, "; it must be >= 1");
  if (e.rank < 0 || e.rank >= e.world_size)
    fail("rank ", e.rank, " is outside the job's world of ", e.world_size, " processes (ranks 0 .. ", e.world_size - 1, ")");
  if (e.master_port < 1 || e.master_port > 65535) fail("MASTER_PORT=", e.master_port, " is not a TCP port");
  return e;
}

LaunchEnv launch_env() {
  return launch_env_from([](const char* name) { return std::getenv(name); });
}

// ---- the process group --------------------------------------------------------------

namespace dist {

namespace {

struct Group {
  LaunchEnv env;
  std::chrono::milliseconds timeout{0};
  std::string backend = "none";
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
};
Group& group() {
  static Group g;
  return g;
}

[[noreturn]] void lost(const std::string& what, const std::string& cause) {
  const Group& g = group();
  std::string c = cause.substr(0, cause.find('\n'));
  throw PeerLost(cat("rank ", g.env.rank, " of ", g.env.world_size, ": ", what, " failed: another rank died, was killed ",
                     "or did not answer within run.dist_timeout = ", g.timeout.count() / 1000.0, " s (", c,
                     "); relaunch the job with --resume to continue from the last checkpoint"));
}

template <typename F>
void guarded(const std::string& what, F&& f) {
  try {
    f();
  } catch (const PeerLost&) {
    throw;
  } catch (const c10::Error& e) {
    lost(what, e.what_without_backtrace());
  } catch (const std::exception& e) {
    lost(what, e.what());
  }
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

void init(const LaunchEnv& env, std::chrono::milliseconds timeout) {
  Group& g = group();
  if (g.pg) fail("the process group is already initialised (", describe(), ")");
  g.env = env;
  g.timeout = timeout;
  if (env.world_size <= 1) return;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.timeout = timeout;
    if (env.agent_store) {
      // torchrun's agent serves the store; its workers use the "/worker" part of it.
      o.isServer = false;
      o.waitWorkers = false;
      auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
      g.store = c10::make_intrusive<c10d::PrefixStore>("/worker", tcp);
    } else {
      o.isServer = env.rank == 0;
      o.numWorkers = env.world_size;
      o.waitWorkers = true;
      g.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // Each rank listens on its own interface: the one GLOO_SOCKET_IFNAME names, loopback for a
    // job on one machine, else the address its host name resolves to.
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(env.master_addr))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    g.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g.store, env.rank, env.world_size, opts);
    g.backend = "gloo";
  } catch (const std::exception& e) {
    std::string m = e.what();
    if (auto* c = dynamic_cast<const c10::Error*>(&e)) m = c->what_without_backtrace();
    g.env = LaunchEnv{};  // back to one process: nothing below may wait for the others
    fail("rank ", env.rank, " of ", env.world_size, " could not join the job at ", env.master_addr, ":", env.master_port,
         " (", env.launcher, " launch) within ", timeout.count() / 1000.0, " s: ", m.substr(0, m.find('\n')),
         " - check MASTER_ADDR/MASTER_PORT, that the port is free and that every rank was started");
  }
}

bool active() { return group().env.world_size > 1; }
int rank() { return group().env.rank; }
int world_size() { return group().env.world_size; }
int local_rank() { return group().env.local_rank; }
bool is_main() { return group().env.rank == 0; }
std::chrono::milliseconds timeout() { return group().timeout; }

std::string describe() {
  const Group& g = group();
  if (g.env.world_size <= 1) return "single process";
  return cat("rank ", g.env.rank, " of ", g.env.world_size, " (", g.backend, ", launched by ", g.env.launcher, ")");
}

void all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  if (!active()) return;
  guarded("all-reduce", [&] { group().pg->allreduce(tensors)->wait(); });
}

void all_reduce_sum(torch::Tensor& tensor) {
  std::vector<torch::Tensor> v{tensor};
  all_reduce_sum(v);
}

void broadcast(std::vector<torch::Tensor>& tensors, int root) {
  if (!active()) return;
  c10d::BroadcastOptions o;
  o.rootRank = root;
  guarded("broadcast", [&] {
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one{t};
      group().pg->broadcast(one, o)->wait();
    }
  });
}

void barrier() {
  if (!active()) return;
  // A barrier is an all-reduce of nothing: gloo's own barrier does not report a dead peer as
  // quickly on every version.
  torch::Tensor t = torch::zeros({1});
  guarded("barrier", [&] {
    std::vector<torch::Tensor> v{t};
    group().pg->allreduce(v)->wait();
  });
}

bool any(bool flag) {
  if (!active()) return flag;
  torch::Tensor t = torch::tensor({flag ? 1.0f : 0.0f});
  all_reduce_sum(t);
  return t.item<float>() > 0;
}

}  // namespace dist

// ---- gradient buckets ---------------------------------------------------------------------

struct GradientSync::State {
  struct Slot {
    torch::Tensor param;
    int64_t bucket = 0, offset = 0;
    unsigned hook = 0;
    bool ready = false;
  };
  struct Bucket {
    torch::Tensor flat;  // the gradients of its parameters, one after the other
    int64_t pending = 0, size = 0;
    std::vector<int64_t> slots;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  int64_t next_launch = 0;
  std::mutex mutex;         // hooks may run on autograd's worker threads
  std::exception_ptr error; // a launch that failed inside a hook, rethrown by finish()

  void launch_ready() {  // in bucket order, so that every rank issues the same sequence
    while (next_launch < int64_t(buckets.size()) && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch++];
      std::vector<torch::Tensor> v{b.flat};
      b.work = dist::group().pg->allreduce(v);
    }
  }
};

GradientSync::GradientSync(std::vector<torch::Tensor> params, int64_t bucket_bytes) : state_(std::make_shared<State>()) {
  if (!dist::active()) fail("GradientSync needs a process group of more than one rank");
  State& s = *state_;
  // Reverse order: backward produces the last layers' gradients first.
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (!it->requires_grad()) continue;
    int64_t bytes = it->numel() * it->element_size();
    if (s.buckets.empty() || (s.buckets.back().size > 0 && (s.buckets.back().size * it->element_size() + bytes) > bucket_bytes))
      s.buckets.emplace_back();
    State::Bucket& b = s.buckets.back();
    State::Slot slot;
    slot.param = *it;
    slot.bucket = int64_t(s.buckets.size()) - 1;
    slot.offset = b.size;
    b.size += it->numel();
    b.slots.push_back(int64_t(s.slots.size()));
    s.slots.push_back(slot);
  }
  // Buckets live on the CPU, where gloo reduces them (a CUDA model's gradients are staged).
  for (auto& b : s.buckets)
    b.flat = torch::zeros({b.size}, s.slots[b.slots.front()].param.options().device(torch::kCPU).requires_grad(false));
  std::weak_ptr<State> weak = state_;
  for (int64_t i = 0; i < int64_t(s.slots.size()); ++i) {
    s.slots[i].hook = s.slots[i].param.register_hook([weak, i](torch::Tensor grad) {
      auto st = weak.lock();
      if (!st) return;
      std::lock_guard<std::mutex> lock(st->mutex);
      State::Slot& slot = st->slots[i];
      if (slot.ready) return;  // a second gradient for the same parameter: finish() copies .grad
      State::Bucket& b = st->buckets[slot.bucket];
      b.flat.narrow(0, slot.offset, slot.param.numel()).copy_(grad.reshape({-1}));
      slot.ready = true;
      if (--b.pending == 0 && !st->error) {
        try {
          st->launch_ready();
        } catch (...) {
          st->error = std::current_exception();
        }
      }
    });
  }
}

GradientSync::~GradientSync() {
  for (auto& slot : state_->slots) slot.param.remove_hook(slot.hook);
}

void GradientSync::begin() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  s.next_launch = 0;
  for (auto& b : s.buckets) {
    b.pending = int64_t(b.slots.size());
    b.work.reset();
  }
  for (auto& slot : s.slots) slot.ready = false;
  s.error = nullptr;
}

void GradientSync::finish() {
  State& s = *state_;
  dist::guarded("gradient all-reduce", [&] {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.error) std::rethrow_exception(s.error);
    // Buckets not launched yet hold parameters backward gave no gradient (or gave it outside
    // the hooks): take .grad, or zeros.
    for (int64_t bi = s.next_launch; bi < int64_t(s.buckets.size()); ++bi) {
      State::Bucket& b = s.buckets[bi];
      for (int64_t si : b.slots) {
        State::Slot& slot = s.slots[si];
        if (slot.ready) continue;
        torch::Tensor g = slot.param.grad();
        auto view = b.flat.narrow(0, slot.offset, slot.param.numel());
        if (g.defined()) view.copy_(g.reshape({-1}));
        else view.zero_();
        slot.ready = true;
      }
      b.pending = 0;
    }
    s.launch_ready();
    for (auto& b : s.buckets) b.work->wait();
  });
  torch::NoGradGuard no_grad;
  for (auto& slot : s.slots) {
    torch::Tensor sum = s.buckets[slot.bucket].flat.narrow(0, slot.offset, slot.param.numel()).view_as(slot.param);
    torch::Tensor& g = slot.param.mutable_grad();
    if (g.defined()) g.copy_(sum);
    else g = sum.to(slot.param.device(), /*non_blocking=*/false, /*copy=*/true);
  }
}

int64_t GradientSync::bytes_per_step() const {
  int64_t n = 0;
  for (const auto& b : state_->buckets) n += b.flat.numel() * b.flat.element_size();
  return n;
}

int64_t GradientSync::buckets() const { return int64_t(state_->buckets.size()); }

}  // namespace retort
