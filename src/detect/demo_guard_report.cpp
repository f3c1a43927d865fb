// report.json and report.html of `retort demo guard`, from the three databases only: per
// provider when the hydra first knocked and what it was answered, what the detector and the
// partners' rules did and when, what A published and B and C received, what the people met; then
// the student and the evidence. First lines: the bar of issue 16 (B and C refuse or throttle the
// campaign's first request; no benign key blocked anywhere) and whether it was met.
#include <algorithm>
#include <set>

#include "detect/demo_guard_parts.h"
#include "guard/statement.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/report.h"

namespace retort::sim {

namespace {

using guard_detail::Statement;
using ojson = nlohmann::ordered_json;

std::string secs(double s) { return decimals(s, 1) + " s"; }

bool has_table(GuardDb& db, const char* name) {
  Statement s(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
  s.bind(1, std::string(name));
  return s.step() && s.integer(0) > 0;
}

struct Knock {  // a request of the hydra's
  bool happened = false;
  double at = 0;
  int status = 0;
  std::string code, key;
};

struct ProviderOutcome {
  Knock first;                       // the hydra's first request here
  int64_t hydra_keys_seen = 0, answered = 0, refused_blocked = 0, refused_limits = 0;
  int64_t answered_before_response = 0;  // answered completions before that first response
  double first_response_at = -1;     // the first throttle/strip/mark/block on a hydra key
  std::string first_response, first_response_source, first_response_reason;
  int64_t partner_rows = 0;          // action rows from partners' indicators
  int64_t published = 0, indicators = 0, received = 0, rules = 0;
  double first_indicator_at = -1, first_received_at = -1;
  int64_t benign = 0, benign_requests = 0, benign_flagged = 0, benign_throttled = 0, benign_blocked = 0;
};

ProviderOutcome outcome_of(const Provider& p, double start) {
  ProviderOutcome r;
  std::set<int64_t> hydra;
  for (const SimKey& k : p.hydra->keys) hydra.insert(k.id);
  const DbRecord rec = read_db(p.db);
  for (const SimKey& k : p.benign) {
    ++r.benign;
    auto it = rec.keys.find(k.id);
    if (it == rec.keys.end()) continue;
    r.benign_requests += it->second.requests;
    std::set<std::string> kinds;
    for (const ActionRow& a : it->second.actions) kinds.insert(a.action);
    r.benign_flagged += !kinds.empty();
    r.benign_blocked += kinds.count("block") > 0;
    r.benign_throttled += kinds.count("block") == 0 && (kinds.count("throttle") + kinds.count("strip") + kinds.count("mark")) > 0;
  }
  for (int64_t id : hydra) {
    auto it = rec.keys.find(id);
    if (it == rec.keys.end()) continue;
    r.hydra_keys_seen += it->second.requests > 0;
    r.answered += int64_t(it->second.answered_at.size());  // answered completions (not the tokenizer's GETs)
    r.refused_blocked += it->second.refused_blocked;
    r.refused_limits += it->second.refused_limits;
    for (const ActionRow& a : it->second.actions)
      if (is_response(a.action) && (r.first_response_at < 0 || a.time - start < r.first_response_at)) {
        r.first_response_at = a.time - start;
        r.first_response = a.action;
        r.first_response_source = a.source;
        r.first_response_reason = a.reason;
      }
  }
  for (int64_t id : hydra) {
    auto it = rec.keys.find(id);
    if (it != rec.keys.end() && r.first_response_at >= 0)
      for (const auto& [t, tokens] : it->second.answered_at) r.answered_before_response += t - start < r.first_response_at;
  }
  GuardDb db(p.db);
  std::lock_guard<std::mutex> lock(db.mutex());
  {
    Statement s(db, "SELECT time, status, error_code, key_name, key_id FROM audit WHERE key_id > 0 ORDER BY id");
    while (s.step())
      if (hydra.count(s.integer(4))) {
        r.first = {true, s.real(0) - start, int(s.integer(1)), s.text(2), s.text(3)};
        break;
      }
  }
  if (has_table(db, "actions")) {
    Statement s(db, "SELECT count(*) FROM actions WHERE source = 'partner'");
    if (s.step()) r.partner_rows = s.integer(0);
  }
  if (has_table(db, "intel_objects")) {
    // date_added is RFC 3339 with milliseconds; SQLite's julianday reads it (Z included)
    Statement s(db,
                "SELECT sum(source = 'local'), sum(source = 'local' AND type = 'indicator'), sum(source != 'local'), "
                "min(CASE WHEN source = 'local' AND type = 'indicator' THEN (julianday(date_added) - 2440587.5) * 86400 END), "
                "min(CASE WHEN source != 'local' AND type = 'indicator' THEN (julianday(date_added) - 2440587.5) * 86400 END) "
                "FROM intel_objects");
    if (s.step()) {
      r.published = s.integer(0), r.indicators = s.integer(1), r.received = s.integer(2);
      if (s.real(3) > 0) r.first_indicator_at = s.real(3) - start;
      if (s.real(4) > 0) r.first_received_at = s.real(4) - start;
    }
  }
  if (has_table(db, "intel_rules")) {
    Statement s(db, "SELECT count(*) FROM intel_rules");
    if (s.step()) r.rules = s.integer(0);
  }
  return r;
}

std::string knock_text(const Knock& k) {
  if (!k.happened) return "never came";
  return cat(secs(k.at), ": ", k.status == 200 ? std::string("answered") : cat("refused ", k.status, " ", k.code), " (", k.key, ")");
}

bool refused_or_throttled(const Knock& k) { return k.happened && (k.status == 403 || k.status == 429); }

// The hydra's answered completions and its refusals (403) at a provider, each cumulative against time.
std::vector<Series> hydra_series(const Provider& p, double start) {
  Series answered{"hydra answered at " + p.name, {}, {}}, refused{"hydra refused at " + p.name, {}, {}};
  std::set<int64_t> hydra;
  for (const SimKey& k : p.hydra->keys) hydra.insert(k.id);
  GuardDb db(p.db);
  std::lock_guard<std::mutex> lock(db.mutex());
  Statement q(db, "SELECT time, key_id, status, endpoint FROM audit ORDER BY id");
  while (q.step()) {
    if (!hydra.count(q.integer(1))) continue;
    if (q.integer(2) == 200 && q.text(3) == "/v1/completions")
      answered.xy.emplace_back(q.real(0) - start, double(answered.xy.size() + 1));
    else if (q.integer(2) == 403)
      refused.xy.emplace_back(q.real(0) - start, double(refused.xy.size() + 1));
  }
  std::vector<Series> out;
  for (Series* s : {&answered, &refused})
    if (!s->xy.empty()) out.push_back(std::move(*s));
  return out;
}

}  // namespace

nlohmann::json write_guard_demo_report(const GuardDemoFacts& f) {
  const double start = f.clock.start_unix;
  std::vector<ProviderOutcome> out;
  for (const Provider& p : f.providers) out.push_back(outcome_of(p, start));
  const Provider& A = f.providers[0];
  const ProviderOutcome& a = out[0];

  std::vector<std::string> misses;
  if (a.first_response_at < 0) misses.push_back("A never responded to the hydra");
  for (size_t i = 1; i < out.size(); ++i)
    if (!refused_or_throttled(out[i].first))
      misses.push_back(cat(f.providers[i].name, " answered the hydra's first request (", knock_text(out[i].first), ")"));
  int64_t benign_blocked = 0, benign_throttled = 0, benign = 0;
  for (const ProviderOutcome& r : out) benign_blocked += r.benign_blocked, benign_throttled += r.benign_throttled, benign += r.benign;
  if (benign_blocked > 0) misses.push_back(cat(benign_blocked, " benign keys were blocked"));
  const std::string bar = "at B and C the campaign's first request is refused or throttled; no benign key at any provider is blocked";

  std::vector<std::string> summary;
  summary.push_back(cat("the bar (", bar, "): ", misses.empty() ? std::string("met") : "not met: " + [&] {
    std::string s;
    for (size_t i = 0; i < misses.size(); ++i) s += (i ? "; " : "") + misses[i];
    return s;
  }()));
  const int64_t planned = A.hydra->planned_requests;
  summary.push_back(cat("A: the hydra (", A.hydra->keys.size(), " keys from ", f.options.sim.hydra_addresses,
                        " addresses) first knocked at ", secs(a.first.at), "; ",
                        a.first_response_at >= 0 ? cat("A's ", a.first_response_source, " answered with ", a.first_response, " at ",
                                                       secs(a.first_response_at), ", after ", a.answered_before_response,
                                                       " answered windows (", decimals(100.0 * double(a.answered_before_response) / double(std::max<int64_t>(1, planned)), 1),
                                                       "% of its plan)")
                                                 : std::string("A never responded"),
                        "; in all it got ", a.answered, " windows answered (", decimals(100.0 * double(a.answered) / double(std::max<int64_t>(1, planned)), 1),
                        "% of its plan of ", planned, ") before every key was refused (", a.refused_blocked, " refusals)"));
  summary.push_back(cat("A published ", a.published, " STIX objects (", a.indicators, " indicators, the first at ",
                        a.first_indicator_at >= 0 ? secs(a.first_indicator_at) : std::string("-"), ")"));
  for (size_t i = 1; i < out.size(); ++i) {
    const ProviderOutcome& r = out[i];
    summary.push_back(cat(f.providers[i].name, ": received ", r.received, " objects from its partners (first indicator at ",
                          r.first_received_at >= 0 ? secs(r.first_received_at) : std::string("-"), "), ", r.rules,
                          " rules; the hydra's first request ", knock_text(r.first), "; ", r.answered, " of its requests answered, ",
                          r.refused_blocked, " refused, ", r.partner_rows, " action rows from partners' indicators"));
  }
  summary.push_back(cat("people: ", benign, " benign keys over ", out.size(), " providers; ", benign_blocked, " blocked, ",
                        benign_throttled, " throttled"));
  if (f.student.contains("val_bpb"))
    summary.push_back(cat("student from the ", f.student["windows"].get<int64_t>(), " windows the hydra got at A: val ",
                          decimals(f.student["val_bpb"].get<double>(), 3), " bits/byte (the teacher ",
                          decimals(f.student["teacher_val_bpb"].get<double>(), 3), ")"));
  else if (f.student.contains("failed"))
    summary.push_back("student: failed: " + f.student["failed"].get<std::string>());
  if (f.evidence.contains("suspect")) {
    std::set<std::string> hydra_names;
    for (const SimKey& k : A.hydra->keys) hydra_names.insert(k.name);
    int64_t keys = 0, hydra_keys = 0, hydra_requests = 0;
    for (const auto& u : f.evidence["marked_answers_by_api_key"]) {
      const std::string name = u["api_key"].get<std::string>();
      if (name.rfind("replay-", 0) == 0) continue;  // the demo's own replay of the harvest
      ++keys;
      if (hydra_names.count(name)) ++hydra_keys, hydra_requests += u["requests"].get<int64_t>();
    }
    summary.push_back(cat("guard verify: ", f.evidence["headline"].get<std::string>(), " The evidence names the ", keys,
                          " keys that received A's marked answers, the hydra's ", hydra_keys, " among them (",
                          hydra_requests, " requests)"));
  } else if (f.evidence.contains("failed")) {
    summary.push_back("guard verify: " + f.evidence["failed"].get<std::string>());
  }
  summary.push_back(cat(secs(f.traffic_seconds), " of traffic, ", secs(f.wall_seconds), " in all"));

  ojson providers = ojson::array();
  for (size_t i = 0; i < out.size(); ++i) {
    const ProviderOutcome& r = out[i];
    const Provider& p = f.providers[i];
    providers.push_back({{"name", p.name},
                         {"db", p.db.string()},
                         {"settings", f.sets.count(p.name) ? f.sets.at(p.name) : std::vector<std::string>{}},
                         {"hydra",
                          {{"first_request", r.first.happened ? ojson{{"at_s", r.first.at}, {"status", r.first.status},
                                                                      {"error_code", r.first.code}, {"key", r.first.key}}
                                                              : ojson(nullptr)},
                           {"keys_seen", r.hydra_keys_seen},
                           {"answered", r.answered},
                           {"answered_before_first_response", r.answered_before_response},
                           {"refused_blocked", r.refused_blocked},
                           {"refused_limits", r.refused_limits},
                           {"first_response", r.first_response_at >= 0 ? ojson{{"at_s", r.first_response_at}, {"action", r.first_response},
                                                                               {"source", r.first_response_source},
                                                                               {"reason", r.first_response_reason}}
                                                                        : ojson(nullptr)}}},
                         {"intel",
                          {{"published_objects", r.published},
                           {"published_indicators", r.indicators},
                           {"first_indicator_at_s", r.first_indicator_at},
                           {"received_objects", r.received},
                           {"first_received_at_s", r.first_received_at},
                           {"rules", r.rules},
                           {"partner_action_rows", r.partner_rows}}},
                         {"benign",
                          {{"keys", r.benign},
                           {"requests", r.benign_requests},
                           {"flagged", r.benign_flagged},
                           {"throttled", r.benign_throttled},
                           {"blocked", r.benign_blocked}}}});
  }
  ojson report = {{"summary", summary},
                  {"bar", {{"rule", bar}, {"met", misses.empty()}, {"misses", misses}}},
                  {"providers", providers},
                  {"student", ojson::parse(f.student.is_null() ? "null" : f.student.dump())},
                  {"evidence", ojson::parse(f.evidence.is_null() ? "null" : f.evidence.dump())},
                  {"definitions",
                   {{"at_s", "seconds since the traffic started (time.start_unix)"},
                    {"first_request", "the hydra's first audit row at that provider: its status and error code"},
                    {"first_response", "the first throttle, strip, mark or block action row on one of the hydra's keys there"},
                    {"received_objects", "objects stored from partners' collections (intel_objects with a partner's source)"}}},
                  {"time", {{"start_unix", start}, {"traffic_s", f.traffic_seconds}, {"wall_s", f.wall_seconds}}},
                  {"seed", f.options.sim.seed},
                  {"model", f.model.string()}};
  atomic_write_text(f.out / "report.json", report.dump(2) + "\n");

  std::vector<std::vector<std::string>> table = {{"provider", "hydra's first request", "its first response", "hydra answered",
                                                  "refused", "published", "received", "rules", "benign blocked"}};
  for (size_t i = 0; i < out.size(); ++i) {
    const ProviderOutcome& r = out[i];
    table.push_back({f.providers[i].name, knock_text(r.first),
                     r.first_response_at >= 0 ? cat(r.first_response, " by ", r.first_response_source, " at ", secs(r.first_response_at)) : "-",
                     std::to_string(r.answered), std::to_string(r.refused_blocked), std::to_string(r.published),
                     std::to_string(r.received), std::to_string(r.rules), cat(r.benign_blocked, " of ", r.benign)});
  }
  Plot plot{"The hydra at each provider: requests answered and refused", "seconds since the start", "requests (cumulative)", {}};
  for (const Provider& p : f.providers)
    for (Series& s : hydra_series(p, start)) plot.series.push_back(std::move(s));
  std::string notes;
  for (const std::string& s : summary) notes += (notes.empty() ? "" : ".\n") + s;
  std::vector<std::pair<std::string, std::string>> samples;
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].first_response_at >= 0)
      samples.emplace_back(cat(f.providers[i].name, ": why the hydra was stopped (", out[i].first_response_source, ")"),
                           out[i].first_response_reason);
  atomic_write_text(f.out / "report.html",
                    render_html("Three providers, one campaign: detection at A, shared as STIX over TAXII, refused at B and C",
                                table, {plot}, nlohmann::json::parse(report.dump()), notes, samples, "Why each provider acted"));
  return nlohmann::json::parse(report.dump());
}

}  // namespace retort::sim
