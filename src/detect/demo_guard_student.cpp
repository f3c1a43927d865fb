// The guard demo's last act: what the hydra's harvest at A was worth, and whether A can tell.
// A student is distilled through A's own API (a key the operator allowed, so the detector leaves
// it be) over the first windows the hydra had answered there, from the same top-k; A's answers are
// a function of the window and A's watermark key, so this is the harvest the hydra took home.
// Then `retort guard verify` teacher-forces the student and the unmarked teacher (the control)
// against A's watermark key, and names the API keys that received marked answers.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "detect/demo_guard_parts.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/guard.h"

namespace retort::sim {

std::string random_group_secret() {
  std::ifstream in("/dev/urandom", std::ios::binary);
  unsigned char b[32];
  if (!in.read(reinterpret_cast<char*>(b), sizeof b)) fail("cannot read /dev/urandom");
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) s += {hex[c >> 4], hex[c & 15]};
  return s;
}

namespace {

// The text settings the teacher was trained with (byte tokenizer) for a window of seq_len tokens.
std::vector<std::string> text_sets(const SimOptions& o, int64_t windows, int64_t val_tokens = 8000) {
  return {"--set", "data.kind=text", "--set", "text.tokenizer=byte", "--set", cat("text.seq_len=", o.seq_len),
          "--set", cat("text.train_tokens=", windows * o.seq_len + 1), "--set", cat("text.val_tokens=", val_tokens)};
}

double val_bpb(const fs::path& run) {
  const fs::path file = run / "run.json";
  if (!fs::exists(file)) return -1;
  const nlohmann::json j = nlohmann::json::parse(read_text(file));
  return j.contains("val_bpb") && j["val_bpb"].is_number() ? j["val_bpb"].get<double>() : -1;
}

}  // namespace

void distil_student(GuardDemoFacts& f) {
  Provider& a = f.providers[0];
  const SimOptions& o = f.options.sim;
  const fs::path dir = f.out / "student";
  fs::create_directories(dir);
  try {
    const std::string replay = cat("replay-", int64_t(unix_now()));
    const std::string secret = KeyStore(std::make_shared<GuardDb>(a.db)).create(replay, {}).second;
    run_child(f.binary, {"guard", "act", "--db", a.db.string(), "--key", replay, "--action", "allow", "--reason",
                         "the guard demo replays what the hydra harvested, to measure it"},
              dir / "student.log", "retort guard act");
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the server's worker picks the allow up
    ::setenv("RETORT_DEMO_REPLAY_KEY", secret.c_str(), 1);
    std::vector<std::string> args = {"distill", "--teacher", "openai:http://127.0.0.1:" + a.port + "/v1",
                                     "--teacher-model", "kjv", "--set", "teacher.api_key_env=RETORT_DEMO_REPLAY_KEY"};
    for (const std::string& s : text_sets(o, f.windows_at_a)) args.push_back(s);
    for (const char* s : {"distill.top_k=10", "model.name=gpt", "model.d_model=64", "model.layers=2", "model.heads=4",
                          "data.batch_size=16", "train.optimizer=adamw", "train.lr=0.003", "train.epochs=8",
                          "train.warmup_steps=5"})
      args.insert(args.end(), {"--set", s});
    args.insert(args.end(), {"--set", "run.dir=" + dir.string(), "--set", "run.name=hydra-at-a", "--set",
                             "run.cache_dir=" + (dir / "cache").string(), "--fresh"});
    std::fprintf(stderr, "demo guard: distilling a student through A's API from the %lld windows the hydra got there\n",
                 static_cast<long long>(f.windows_at_a));
    Child run(f.binary, args, dir / "student.log", false);
    if (run.wait() != 0) fail("the student's distillation failed (", (dir / "student.log").string(), "): ", tail_of(dir / "student.log"));
    f.student = {{"run", (dir / "hydra-at-a").string()},
                 {"windows", f.windows_at_a},
                 {"tokens", f.windows_at_a * o.seq_len},
                 {"val_bpb", val_bpb(dir / "hydra-at-a")},
                 {"teacher_val_bpb", val_bpb(f.model)},
                 {"method", "top-10 logprobs of A's API over the windows the hydra had answered at A; gpt d_model 64, "
                            "2 layers (the teacher's shape), 8 epochs"}};
  } catch (const std::exception& e) {
    f.student = {{"failed", e.what()}};
    std::fprintf(stderr, "demo guard: the student failed: %s\n", e.what());
  }
}

void verify_student(GuardDemoFacts& f) {
  if (!f.student.contains("run")) return;
  const SimOptions& o = f.options.sim;
  const fs::path out = f.out / "evidence";
  std::vector<std::string> args = {"guard", "verify", "--db", f.providers[0].db.string(), "--suspect",
                                   f.student["run"].get<std::string>(), "--out", out.string()};
  for (const std::string& s : text_sets(o, 1, 40000)) args.push_back(s);  // held-out text the student never saw
  std::fprintf(stderr, "demo guard: retort guard verify of the student against A's watermark key\n");
  Child run(f.binary, args, f.out / "verify.log", false);
  if (run.wait() != 0 || !fs::exists(out / "evidence.json")) {
    f.evidence = {{"failed", "retort guard verify failed: " + tail_of(f.out / "verify.log")}};
    return;
  }
  f.evidence = nlohmann::json::parse(read_text(out / "evidence.json"));
  f.evidence["html"] = (out / "evidence.html").string();
}

}  // namespace retort::sim
