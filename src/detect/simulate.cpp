// `retort guard simulate`, the run from start to end: a teacher (given, or a tiny one trained
// once), a fresh database with every simulated key, `retort serve` as a child process with
// detection on, benign and campaign threads until sim.duration, the server stopped, and the
// report computed from the database. The parts are simulate_*.cpp (simulate_parts.h).
#include "retort/simulate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "detect/simulate_parts.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/guard.h"
#include "retort/data.h"
#include "retort/model.h"
#include "retort/progress.h"

namespace retort {

namespace sim {

std::string tail_of(const fs::path& file, size_t chars) {
  if (!fs::exists(file)) return "(no log)";
  const std::string s = read_text(file);
  return s.size() > chars ? "..." + s.substr(s.size() - chars) : s;
}

// The served teacher: sim.model, or a tiny byte-level gpt trained once into OUT/teacher (reused
// by later runs into the same folder).
fs::path sim_teacher(const SimOptions& o, const fs::path& out, const fs::path& binary) {
  if (!o.model.empty()) {
    if (!is_model_folder(o.model))
      fail("sim.model = '", o.model, "' is not a model or run folder (no model.json",
           fs::exists(o.model) ? " in it" : ": the path does not exist", "); train one with `retort train`, or leave ",
           "sim.model empty to have a tiny teacher trained");
    return o.model;
  }
  const fs::path dir = out / "teacher";
  if (is_model_folder(dir)) return dir;
  std::fprintf(stderr, "simulate: training a tiny teacher into %s (once; later runs reuse it)\n", dir.c_str());
  const std::vector<std::string> args = {
      "train", "--set", "data.kind=text", "--set", "text.tokenizer=byte", "--set", "text.train_tokens=300000",
      "--set", "text.val_tokens=4000", "--set", "text.seq_len=256", "--set", "data.batch_size=16", "--set",
      "model.name=gpt", "--set", "model.d_model=64", "--set", "model.layers=2", "--set", "model.heads=4", "--set",
      "train.optimizer=adamw", "--set", "train.lr=0.003", "--set", "train.epochs=1", "--set", "train.warmup_steps=5",
      "--set", "run.dir=" + out.string(), "--set", "run.name=teacher"};
  Child train(binary, args, out / "teacher.log", /*pipe_stdout=*/false);
  if (train.wait() != 0 || !is_model_folder(dir))
    fail("training the simulation's teacher failed (", (out / "teacher.log").string(), "): ", tail_of(out / "teacher.log"));
  return dir;
}

namespace {

// Every simulated key in a fresh database: people and the hydra and low-and-slow keys on the
// ordinary tier, the paid tier for evaluation jobs, apps and campaigns 1 and 3.
void make_keys(const SimOptions& o, const fs::path& db_file, std::vector<SimKey>& benign,
               std::vector<std::unique_ptr<Campaign>>& campaigns) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db_file.string() + suffix);
  KeyStore store(std::make_shared<GuardDb>(db_file));
  const KeyLimits user{o.user_rpm, o.user_tpm, 0}, paid{o.campaign_rpm, o.campaign_tpm, 0};
  auto make = [&](SimKey& k, const KeyLimits& limits) {
    auto [record, secret] = store.create(k.name, limits);
    k.id = record.id;
    k.secret = secret;
  };
  for (SimKey& k : benign) make(k, k.role == "eval job" || k.role == "app" ? paid : user);
  for (auto& c : campaigns)
    for (SimKey& k : c->keys) make(k, c->kind == "topk" || c->kind == "seqkd" ? paid : user);
}

}  // namespace
}  // namespace sim

nlohmann::json run_simulation(const SimOptions& o, const fs::path& out, const fs::path& binary) {
  using namespace sim;  // here, not at file scope: unity batches would carry it into other files
  const auto wall_start = std::chrono::steady_clock::now();
  fs::create_directories(out);
  RunFacts facts;
  facts.options = o;
  facts.out = out;
  facts.model = sim_teacher(o, out, binary);
  const Material material = load_material(facts.model, o.seq_len);

  std::mt19937_64 rng(mix_seed(uint64_t(o.seed), 0x51u, 0));
  facts.benign = plan_benign_keys(o, rng);
  std::vector<std::unique_ptr<Campaign>> campaigns = plan_campaigns(o, material);
  facts.campaigns = &campaigns;
  const fs::path db = out / "serve.db";
  make_keys(o, db, facts.benign, campaigns);

  const double hour = o.hour > 0 ? o.hour : o.duration / 24;
  facts.server = server_settings(o, hour);
  std::vector<std::string> args = {"serve", "--model", "kjv=" + facts.model.string(), "--db", db.string(), "--port",
                                   "0", "--host", "127.0.0.1", "--workers", std::to_string(o.workers),
                                   "--max-connections-per-client", "100000"};
  if (!o.server_config.empty()) {
    if (!fs::is_regular_file(o.server_config)) fail("sim.server_config = '", o.server_config, "': no such file");
    args.insert(args.end(), {"--config", o.server_config});
  }
  for (const std::string& s : facts.server.sets) args.insert(args.end(), {"--set", s});
  if (!facts.server.missing.empty()) {
    std::string names;
    for (const std::string& k : facts.server.missing) names += (names.empty() ? "" : ", ") + k;
    std::fprintf(stderr, "simulate: this retort serve does not know %s (no detector in this build): nothing will be "
                 "detected\n", names.c_str());
  }
  fs::remove(out / "serve.log");
  Child server(binary, args, out / "serve.log", /*pipe_stdout=*/true);
  const std::string port = server.read_line(120);
  if (port.empty()) fail("retort serve did not start (", (out / "serve.log").string(), "): ", tail_of(out / "serve.log"));

  Traffic t;
  t.base_url = "http://127.0.0.1:" + port + "/v1";
  t.model = "kjv";
  t.stop = std::make_shared<std::atomic<bool>>(false);
  t.material = &material;
  t.out = out;
  set_progress_enabled(false);
  std::fprintf(stderr, "simulate: %zu benign keys and %zu campaigns against %s for %g s (an hour is %g s), seed %lld\n",
               facts.benign.size(), campaigns.size(), t.base_url.c_str(), o.duration, hour,
               static_cast<long long>(o.seed));
  t.clock.start_unix = unix_now();
  std::atomic<int64_t> running{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < facts.benign.size(); ++i) {
    ++running;
    threads.emplace_back([&, i] {
      run_benign(t, o, facts.benign[i], mix_seed(uint64_t(o.seed), 0xbe9u, i));
      --running;
    });
  }
  for (auto& c : campaigns) {
    ++running;
    threads.emplace_back([&, c = c.get()] {
      try {
        run_campaign(t, o, *c);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(c->mutex);
        c->ended.push_back(cat("the campaign failed: ", e.what()));
      }
      --running;
    });
  }
  // Until the duration is up or every thread has nothing left to do; a line every 15 s.
  for (double next_line = 15; t.clock.elapsed() < o.duration && running.load() > 0;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (t.clock.elapsed() >= next_line) {
      std::fprintf(stderr, "simulate: %.0f s of %g, %lld clients still active\n", t.clock.elapsed(), o.duration,
                   static_cast<long long>(running.load()));
      next_line += 15;
    }
  }
  t.stop->store(true);
  for (auto& th : threads) th.join();
  facts.traffic_seconds = t.clock.elapsed();
  facts.clock = t.clock;
  // The detector works off the request path: give it a moment with the last rows.
  if (facts.server.detect) std::this_thread::sleep_for(std::chrono::seconds(3));
  const int status = server.terminate(15);
  if (status != 0 && status != 128 + 15)
    std::fprintf(stderr, "simulate: retort serve exited with status %d (%s)\n", status, (out / "serve.log").c_str());
  const DbRecord record = read_db(db);
  facts.binary = binary;
  if (o.students) facts.students = train_students(facts, record);
  facts.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return write_sim_report(facts, record);
}

}  // namespace retort
