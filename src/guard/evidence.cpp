// The marks a guard database holds and the evidence files of a verification (retort/evidence.h).
#include "retort/evidence.h"

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/report.h"
#include "retort/teacher_source.h"

namespace retort {

namespace {

std::string p_text(double p) {
  if (p >= 0.001) return decimals(p, 3);
  std::ostringstream s;
  s << std::scientific << std::setprecision(1) << std::max(p, 1e-300);
  return s.str();
}

std::string iso_utc(double unix_seconds) {
  const std::time_t t = std::time_t(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json test_json(const RadioactivityTest& t) {
  const Detection& d = t.detection;
  return {{"method", t.method}, {"scheme", d.scheme}, {"key_id", d.key_id}, {"predictions", t.predictions},
          {"tokens_scored", d.tokens_scored}, {"score", d.score}, {"z", d.z}, {"p_value", d.p_value}};
}

// What a test scores: tokens of text, contexts (the green-mass tests) or (DAWN) the classifier inputs
// the server marked on which the suspect's class is not the served model's top class.
std::string unit_of(const RadioactivityTest& t) {
  if (t.method == "dawn") return "marked inputs off the served top class";
  return t.method.find("green mass") != std::string::npos ? "contexts" : "scored tokens";
}

std::string headline(const Evidence& e) {
  const Detection& d = e.test.detection;
  const std::string unit = unit_of(e.test);
  std::string s;
  if (d.p_value < e.alpha)
    s = cat("The suspect ", e.suspect, " carries watermark ", d.key_id, " (", d.scheme, "): p = ", p_text(d.p_value),
            " over ", thousands(d.tokens_scored), " ", unit, " (", e.test.method, " test), below the threshold ",
            p_text(e.alpha), ".");
  else
    s = cat("No evidence that ", e.suspect, " learned from marked answers: p = ", p_text(d.p_value), " over ",
            thousands(d.tokens_scored), " ", unit, " (", e.test.method, " test) is not below the threshold ",
            p_text(e.alpha), ".");
  s += cat(" The control, ", e.reference, ", gives p = ", p_text(e.control.detection.p_value), " on the same test");
  std::string named;
  for (const std::string& b : e.baselines) named += (named.empty() ? "" : ", ") + b;
  if (e.baselines.empty()) s += ".";
  else if (e.baselines.size() == 1) s += cat(", both less the baseline ", named, ".");
  else s += cat(", both less the mean of ", e.baselines.size(), " baselines (", named, ").");
  if (d.p_value < e.alpha && !e.usage.empty()) {
    int64_t tokens = 0;
    for (const MarkedUsage& u : e.usage) tokens += u.prompt_tokens + u.completion_tokens;
    s += cat(" ", e.usage.size(), " API key", e.usage.size() == 1 ? "" : "s", " received answers marked with ",
             d.key_id, " (", thousands(tokens), " tokens in all; the most: ", e.usage.front().api_key_name, ").");
  }
  return s;
}

}  // namespace

DatabaseMarks database_marks(const WatermarkStore& store, const std::string& db_name, const std::string& model) {
  const std::vector<ServingRecord> records = store.serving();
  if (records.empty())
    fail("the guard database '", db_name, "' records no model served with a watermark: start one with retort serve --db ",
         db_name, " --set serve.watermark=kgw (after retort guard keys rotate --db ", db_name, ")");
  DatabaseMarks out;
  out.model_path = model;
  for (const ServingRecord& r : records)  // the newest language model (classifiers have no tokenizer)
    if (out.model_path.empty() && !r.tokenizer.empty()) out.model_path = r.path;
  if (out.model_path.empty())
    fail("the guard database '", db_name, "' records no language model served with a watermark, only classifiers");
  const TeacherSourceOptions local;  // a marked model is a local one: no endpoint settings
  OpenedTeacher marked = open_teacher(out.model_path, local);
  out.tokenizer = tokenizer_of_model(marked.local_model("retort guard (the marked model's tokenizer)"));
  std::vector<StoredWatermarkKey> keys = store.all();
  std::set<std::string> seen;
  for (const ServingRecord& r : records) {
    if (r.tokenizer != out.tokenizer->fingerprint()) continue;
    const std::string id = cat(r.key_id, "/", watermark_scheme_name(r.options.scheme), "/", r.options.gamma, "/",
                               r.options.context);
    if (!seen.insert(id).second) continue;
    for (const StoredWatermarkKey& k : keys)
      if (k.key.id == r.key_id) out.marks.emplace_back(k.key, r.options);
  }
  if (out.marks.empty())
    fail("no model with the tokenizer of ", out.model_path, " (", out.tokenizer->describe(), ") was served marked from '",
         db_name, "'");
  return out;
}

EvidenceFiles write_evidence(const fs::path& dir, const Evidence& e) {
  fs::create_directories(dir);
  EvidenceFiles files{dir / "evidence.json", dir / "evidence.html", headline(e)};
  const Detection& d = e.test.detection;
  nlohmann::json usage = nlohmann::json::array();
  for (const MarkedUsage& u : e.usage)
    usage.push_back({{"api_key", u.api_key_name}, {"api_key_id", u.api_key_id}, {"requests", u.requests},
                     {"prompt_tokens", u.prompt_tokens}, {"completion_tokens", u.completion_tokens},
                     {"first", iso_utc(u.first)}, {"last", iso_utc(u.last)}});
  nlohmann::json report = {{"headline", files.headline},
                           {"verdict", d.p_value < e.alpha ? "marked" : "not shown"},
                           {"alpha", e.alpha},
                           {"suspect", {{"model", e.suspect}, {"test", test_json(e.test)}}},
                           {"control", {{"model", e.reference}, {"test", test_json(e.control)}}},
                           {"baselines", e.baselines},
                           {"marked_answers_by_api_key", usage}};
  atomic_write_text(files.json, report.dump(2) + "\n");

  std::vector<std::vector<std::string>> table = {{"model", "role", "method", "key", unit_of(e.test), "z", "p-value"}};
  auto row = [&](const RadioactivityTest& t, const std::string& role, const std::string& who) {
    table.push_back({who, role, t.method, t.detection.key_id, thousands(t.detection.tokens_scored),
                     decimals(t.detection.z, 2), p_text(t.detection.p_value)});
  };
  row(e.test, "suspect", e.suspect);
  row(e.control, "control", e.reference);
  for (const std::string& b : e.baselines) table.push_back({b, "baseline", "subtracted", "-", "-", "-", "-"});
  Plot growth{"Evidence as it accumulates",
              unit_of(e.test) == "scored tokens" ? "distinct (context, token) pairs scored" : unit_of(e.test) + " scored",
              "-log10 p", {}};
  growth.series.push_back({"suspect: " + e.suspect, e.test.growth, {}});
  growth.series.push_back({"control: " + e.reference, e.control.growth, {}});
  const double threshold = -std::log10(e.alpha);
  double last = 1;
  for (const auto& s : growth.series)
    for (const auto& [x, y] : s.xy) last = std::max(last, x);
  growth.series.push_back({"threshold p = " + p_text(e.alpha), {{0, threshold}, {last, threshold}}, {}});
  std::vector<std::pair<std::string, std::string>> samples;
  if (!e.usage.empty()) {
    std::string who;
    for (const MarkedUsage& u : e.usage)
      who += cat(u.api_key_name, ": ", thousands(u.requests), " requests, ", thousands(u.prompt_tokens), " prompt and ",
                 thousands(u.completion_tokens), " completion tokens marked, ", iso_utc(u.first), " to ", iso_utc(u.last),
                 "\n");
    samples.emplace_back("API keys that received answers marked with " + d.key_id, who);
  }
  atomic_write_text(files.html, render_html("Watermark evidence: " + e.suspect, table, {growth}, report,
                                            files.headline, samples, "Who received marked answers"));
  return files;
}

}  // namespace retort
