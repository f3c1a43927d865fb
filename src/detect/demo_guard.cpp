// `retort demo guard` (retort/demo_guard.h), the run: the teacher, three providers (a database
// each with the people, the hydra's accounts there, a watermark key, read rights for the two
// partners), three `retort serve` children with detection, TAXII and pulls on, the partners
// introduced to each other (`retort intel partner add`), then the traffic: people at every
// provider all along; the hydra at A, then, once stopped there and after `regroup` seconds, at B,
// then at C. Afterwards a student is distilled through A's API over as many windows as the hydra
// got answered at A (A's answers are a function of the window and A's watermark key, so these are
// the answers it got), and `retort guard verify` tests it against A's mark. The report is
// demo_guard_report.cpp's, from the three databases.
#include "retort/demo_guard.h"

#include <cstdlib>
#include <fstream>
#include <thread>

#include "detect/demo_guard_parts.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/guard.h"
#include "retort/progress.h"

namespace retort {

const char* guard_demo_toml() {
  return R"toml(
[sim]
duration = 90.0        # seconds of traffic at least (more while the hydra is still moving)
hour = 4.0
benign_keys = 30       # people at each provider
benign_requests = 6.0
offices = 3
eval_jobs = 1
eval_rounds = 2
apps = 1
app_requests = 60.0
topk_windows = 0       # only the hydra
seqkd_prompts = 0
slow_interval = 0.0
hydra_keys = 12
hydra_addresses = 3
hydra_windows = 360
hydra_parallel = 4
hydra_start = 0.1
)toml";
}

GuardDemoOptions read_guard_demo_options(const Config& c) {
  GuardDemoOptions o;
  o.sim = read_sim_options(c);
  o.max_duration = std::max(o.max_duration, 3 * o.sim.duration);
  o.regroup = std::max(3.0, o.sim.duration / 8);  // long enough for the partners' next pull
  return o;
}

namespace sim {

namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// The provider's database: its people, the hydra's accounts there, and one key per
// partner (the key that partner pulls with).
void make_provider_db(const SimOptions& o, Provider& p, const std::vector<Provider>& all) {
  fs::create_directories(p.dir);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.db.string() + suffix);
  KeyStore store(std::make_shared<GuardDb>(p.db));
  const KeyLimits user{o.user_rpm, o.user_tpm, 0}, paid{o.campaign_rpm, o.campaign_tpm, 0};
  auto make = [&](SimKey& k, const KeyLimits& limits) {
    auto [record, secret] = store.create(k.name, limits);
    k.id = record.id;
    k.secret = secret;
  };
  for (SimKey& k : p.benign) make(k, k.role == "eval job" || k.role == "app" ? paid : user);
  for (SimKey& k : p.hydra->keys) make(k, user);
  for (const Provider& q : all)
    if (q.name != p.name) p.partner_keys[q.name] = store.create("partner-" + lower(q.name), {}).second;
}

}  // namespace

// Runs `retort ARGS` to its end; Error with the log's tail when it fails.
void run_child(const fs::path& binary, const std::vector<std::string>& args, const fs::path& log, const std::string& what) {
  Child c(binary, args, log, /*pipe_stdout=*/false);
  if (c.wait() != 0) fail(what, " failed (", log.string(), "): ", tail_of(log));
}

Provider::Provider() = default;
Provider::~Provider() = default;

}  // namespace sim

nlohmann::json run_guard_demo(const GuardDemoOptions& d, const fs::path& out, const fs::path& binary) {
  using namespace sim;
  const SimOptions& o = d.sim;
  if (d.providers < 2 || d.providers > 8) fail("the guard demo needs 2 to 8 providers (asked for ", d.providers, ")");
  if (o.hydra_keys <= 0) fail("the guard demo needs its hydra: sim.hydra_keys must be > 0");
  const auto wall_start = std::chrono::steady_clock::now();
  fs::create_directories(out);
  GuardDemoFacts f;
  f.options = d;
  f.out = out;
  f.binary = binary;
  std::fprintf(stderr, "demo guard: %lld providers, %lld people each, a hydra of %lld keys starting at A\n",
               static_cast<long long>(d.providers), static_cast<long long>(o.benign_keys + o.eval_jobs + o.apps),
               static_cast<long long>(o.hydra_keys));
  f.model = sim_teacher(o, out, binary);
  const Material material = load_material(f.model, o.seq_len);

  // Who is where. People differ per provider (the seed); the hydra's accounts at B and C are new
  // names from the same addresses and client.
  SimOptions hydra_only = o;
  hydra_only.topk_windows = 0, hydra_only.seqkd_prompts = 0, hydra_only.slow_interval = 0;
  f.providers.resize(size_t(d.providers));
  for (int64_t i = 0; i < d.providers; ++i) {
    Provider& p = f.providers[size_t(i)];
    p.name = std::string(1, char('A' + i));
    p.dir = out / p.name;
    p.db = p.dir / "serve.db";
    std::mt19937_64 rng(mix_seed(uint64_t(o.seed), 0x9a4d + uint64_t(i), 0));
    p.benign = plan_benign_keys(o, rng);
    auto campaigns = plan_campaigns(hydra_only, material);
    if (campaigns.size() != 1) fail("the guard demo plans one campaign, the hydra; got ", campaigns.size());
    p.hydra = std::move(campaigns[0]);
    if (i > 0)
      for (SimKey& k : p.hydra->keys) k.name = "c2-hydra-" + lower(p.name) + k.name.substr(std::string("c2-hydra").size());
  }
  for (Provider& p : f.providers) make_provider_db(o, p, f.providers);

  // Each provider: a watermark key, the partners' read rights, its server.
  const std::string secret = random_group_secret();
  const double hour = o.hour > 0 ? o.hour : o.duration / 24;
  const ServerSettings settings = server_settings(o, hour);
  for (Provider& p : f.providers) {
    run_child(binary, {"guard", "keys", "rotate", "--db", p.db.string()}, p.dir / "setup.log", "making " + p.name + "'s watermark key");
    for (const Provider& q : f.providers)
      if (q.name != p.name)
        run_child(binary,
                  {"intel", "grant", "--db", p.db.string(), "--key", "partner-" + lower(q.name), "--collection",
                   "distillation-campaigns", "--read"},
                  p.dir / "setup.log", "granting " + q.name + " read rights at " + p.name);
    std::vector<std::string> args = {"serve", "--model", "kjv=" + f.model.string(), "--db", p.db.string(), "--port", "0",
                                     "--host", "127.0.0.1", "--workers", std::to_string(o.workers),
                                     "--max-connections-per-client", "100000"};
    if (!o.server_config.empty()) {  // the policy (guard.*), as `retort guard simulate` takes it
      if (!fs::is_regular_file(o.server_config)) fail("sim.server_config = '", o.server_config, "': no such file");
      args.insert(args.end(), {"--config", o.server_config});
    }
    std::vector<std::string> sets = settings.sets;
    sets.insert(sets.end(), {"serve.watermark=kgw", "serve.watermark_context=2", "intel.taxii=true", "intel.pull=true", "intel.pull_interval=2",
                             "intel.publish_interval=1", "intel.provider=provider-" + lower(p.name),
                             "intel.group_secret=" + secret});
    for (const std::string& s : sets) args.insert(args.end(), {"--set", s});
    p.server = std::make_unique<Child>(binary, args, p.dir / "serve.log", /*pipe_stdout=*/true);
    p.port = p.server->read_line(120);
    if (p.port.empty()) fail("provider ", p.name, "'s retort serve did not start (", (p.dir / "serve.log").string(), "): ", tail_of(p.dir / "serve.log"));
    f.sets[p.name] = sets;
  }
  // Introductions: each provider pulls every other one with the key that one issued to it.
  for (Provider& p : f.providers)
    for (const Provider& q : f.providers) {
      if (q.name == p.name) continue;
      const std::string env = "RETORT_DEMO_TOKEN_" + p.name + "_" + q.name;
      ::setenv(env.c_str(), q.partner_keys.at(p.name).c_str(), 1);
      run_child(binary,
                {"intel", "partner", "add", "--db", p.db.string(), "--name", "provider-" + lower(q.name), "--url",
                 "http://127.0.0.1:" + q.port + "/taxii2/api1/", "--collection", "distillation-campaigns", "--token-env", env},
                p.dir / "setup.log", "introducing " + q.name + " to " + p.name);
    }

  // The traffic.
  auto stop = std::make_shared<std::atomic<bool>>(false);
  Clock clock;
  for (Provider& p : f.providers) {
    p.traffic.base_url = "http://127.0.0.1:" + p.port + "/v1";
    p.traffic.model = "kjv";
    p.traffic.stop = stop;
    p.traffic.material = &material;
    p.traffic.out = p.dir;
  }
  set_progress_enabled(false);
  clock.start_unix = unix_now();
  for (Provider& p : f.providers) p.traffic.clock = clock;
  f.clock = clock;
  std::atomic<int64_t> running{0};
  std::atomic<bool> hydra_done{false};
  std::vector<std::thread> threads;
  for (size_t pi = 0; pi < f.providers.size(); ++pi)
    for (size_t i = 0; i < f.providers[pi].benign.size(); ++i) {
      ++running;
      threads.emplace_back([&, pi, i] {
        Provider& p = f.providers[pi];
        run_benign(p.traffic, o, p.benign[i], mix_seed(uint64_t(o.seed), 0xbe9u + pi, i));
        --running;
      });
    }
  threads.emplace_back([&] {
    for (size_t pi = 0; pi < f.providers.size() && !stop->load(); ++pi) {
      Provider& p = f.providers[pi];
      p.hydra->start = pi == 0 ? o.hydra_start * o.duration : clock.elapsed() + d.regroup;
      if (pi > 0) std::fprintf(stderr, "demo guard: the hydra is stopped at %s; it regroups and tries %s in %g s\n",
                               f.providers[pi - 1].name.c_str(), p.name.c_str(), d.regroup);
      try {
        run_campaign(p.traffic, o, *p.hydra);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(p.hydra->mutex);
        p.hydra->ended.push_back(cat("the campaign failed: ", e.what()));
      }
    }
    hydra_done = true;
  });
  for (double next_line = 15;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double t = clock.elapsed();
    if ((hydra_done.load() && t >= o.duration) || t >= d.max_duration) break;
    if (t >= next_line) {
      std::fprintf(stderr, "demo guard: %.0f s, %lld people still active%s\n", t, static_cast<long long>(running.load()),
                   hydra_done.load() ? "; the hydra has given up" : "");
      next_line += 15;
    }
  }
  stop->store(true);
  for (auto& th : threads) th.join();
  f.traffic_seconds = clock.elapsed();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the detectors' last passes, the last pulls

  // What the hydra got at A, as a student, while A still serves.
  const DbRecord a_record = read_db(f.providers[0].db);
  f.windows_at_a = campaign_result(*f.providers[0].hydra, a_record, clock.start_unix).requests;
  for (size_t i = 1; i < f.providers.size(); ++i) f.providers[i].server->terminate(15);
  if (d.student && f.windows_at_a > 0) distil_student(f);
  f.providers[0].server->terminate(15);
  if (d.student && f.windows_at_a > 0) verify_student(f);
  f.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return write_guard_demo_report(f);
}

}  // namespace retort
