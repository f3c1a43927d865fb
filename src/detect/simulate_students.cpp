// sim.students: what each top-k campaign's harvest was worth. Two students per campaign, distilled
// (`retort distill`, child processes) from the served teacher's top-k over as many training windows
// as the campaign had answered before the guard's first response, and over its whole plan; their
// validation bits per byte side by side. The top-k comes from the teacher folder itself: the
// answers of retort serve are that model's top-k (e2e.serve_distill checks them equal), and the
// campaign's own cache is keyed by the URL of a server that is gone.
#include <cstdio>

#include "detect/simulate_parts.h"
#include "retort/error.h"
#include "retort/fs.h"

namespace retort::sim {

namespace {

// One student on the first `windows` training windows; its val bits per byte, or null on failure.
nlohmann::json student(const RunFacts& f, const Campaign& c, const std::string& name, int64_t windows) {
  const int64_t T = f.options.seq_len;
  const fs::path dir = f.out / "students";
  const std::vector<std::string> args = {
      "distill", "--teacher", f.model.string(), "--set", "data.kind=text", "--set", "text.tokenizer=auto", "--set",
      cat("text.seq_len=", T), "--set", cat("text.train_tokens=", windows * T + 1), "--set", "text.val_tokens=8000",
      "--set", cat("distill.top_k=", c.k), "--set", "model.name=gpt", "--set", "model.d_model=32", "--set",
      "model.layers=1", "--set", "model.heads=2", "--set", "data.batch_size=16", "--set", "train.optimizer=adamw", "--set",
      "train.lr=0.003", "--set", "train.epochs=3", "--set", "train.warmup_steps=5", "--set", "run.dir=" + dir.string(),
      "--set", "run.name=" + name, "--set", "run.cache_dir=" + (dir / "cache").string(), "--fresh"};
  fs::create_directories(dir);
  Child run(f.binary, args, dir / (name + ".log"), /*pipe_stdout=*/false);
  const int status = run.wait();
  const fs::path result = dir / name / "run.json";
  if (status != 0 || !fs::exists(result)) {
    std::fprintf(stderr, "simulate: the student %s failed (%s)\n", name.c_str(), (dir / (name + ".log")).c_str());
    return nullptr;
  }
  const nlohmann::json run_json = nlohmann::json::parse(read_text(result));
  return run_json.contains("val_bpb") ? run_json["val_bpb"] : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json train_students(const RunFacts& f, const DbRecord& db) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : *f.campaigns) {
    if (c->k <= 0) continue;  // text only: its student would learn from text, not top-k
    const CampaignResult r = campaign_result(*c, db, f.clock.start_unix);
    const int64_t before = r.responded.happened ? r.responded.requests : r.requests;
    std::fprintf(stderr, "simulate: students for %s: %lld windows (before the response) vs %lld (its plan)\n",
                 c->id.c_str(), static_cast<long long>(before), static_cast<long long>(c->planned_requests));
    nlohmann::json s = {{"campaign", c->id},
                        {"k", c->k},
                        {"windows_before_response", before},
                        {"windows_planned", c->planned_requests},
                        {"responded", r.responded.happened}};
    s["val_bpb_planned"] = student(f, *c, c->id + "-all", c->planned_requests);
    s["val_bpb_before_response"] = before == c->planned_requests ? s["val_bpb_planned"]  // the same run
                                   : before >= 1 ? student(f, *c, c->id + "-before", before)
                                                 : nlohmann::json(nullptr);
    out.push_back(s);
  }
  return {{"method",
           "gpt students (d_model 32, 1 layer, 3 epochs) distilled from the served teacher's top-k over the first N "
           "training windows: N = windows the campaign had answered before the first response (all it got when never "
           "responded to) vs N = its whole plan; val bits per byte on held-out KJV text"},
          {"students", out}};
}

}  // namespace retort::sim
