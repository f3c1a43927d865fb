// report.json and report.html of a simulation: first what was found (per campaign whether and
// when it was detected and answered, and how much of its harvest it had by then; every benign key
// that was flagged, throttled or blocked; the bar of issue 15), then the details, with a timeline
// per campaign (harvested share against time, detection and response marked) drawn by the
// reports' own renderer (retort/report.h).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "detect/simulate_parts.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/report.h"

namespace retort::sim {

namespace {

using ojson = nlohmann::ordered_json;

constexpr double kDetectBefore = 0.10;   // each campaign detected before this share of its harvest
constexpr double kThrottledAtMost = 0.01;  // share of benign keys throttled at most

std::string pct(double share) { return decimals(100 * share, 1) + "%"; }
std::string secs(double s) { return decimals(s, 1) + " s"; }

ojson moment_json(const Moment& m) {
  if (!m.happened) return nullptr;
  return {{"at_s", m.at}, {"requests", m.requests}, {"tokens", m.tokens}, {"share", m.share},
          {"action", m.action}, {"key", m.key}, {"reason", m.reason}};
}

// "3 finished, 1 refused: HTTP 403 ..." from each key's ending.
std::string endings(const Campaign& c) {
  std::map<std::string, int64_t> count;
  for (const std::string& e : c.ended) {
    std::string how = e.substr(e.find(": ") + 2);
    // the server's refusals differ only in their decision numbers and counts: one line per kind
    if (how.find("HTTP 403") != std::string::npos && how.find("blocked") != std::string::npos)
      how = "refused: blocked (HTTP 403 key_blocked)";
    else if (how.find("is null") != std::string::npos && how.find("logprob") != std::string::npos)
      how = "refused: stripped answers (logprobs null)";
    else if (how.size() > 160)
      how = how.substr(0, 160) + "...";
    ++count[how];
  }
  std::string out;
  for (const auto& [how, n] : count) out += cat(out.empty() ? "" : "; ", n, " x ", how);
  return out.empty() ? "(no key reported)" : out;
}

std::string campaign_line(const CampaignResult& r) {
  const Campaign& c = *r.c;
  std::string s = cat(c.id, " (", c.title, "): ");
  if (r.detected.happened)
    s += cat("detected at ", secs(r.detected.at), " after ", thousands(r.detected.requests), " requests / ",
             thousands(r.detected.tokens), " tokens (", pct(r.detected.share), " of its planned harvest, ",
             r.detected.share < kDetectBefore ? "before" : "NOT before", " 10%)");
  else
    s += "NOT detected";
  if (r.responded.happened)
    s += cat("; responded to (", r.responded.action, ") at ", secs(r.responded.at), " after ",
             thousands(r.responded.requests), " requests (", pct(r.responded.share), ")");
  else if (r.detected.happened)
    s += "; no response (throttle, strip, mark or block)";
  s += cat("; harvested ", thousands(r.requests), " of ", thousands(c.planned_requests), " requests (",
           pct(r.share()), ") in all");
  if (c.keys.size() > 1) s += cat("; ", r.keys_detected, " of ", c.keys.size(), " keys detected, ", r.keys_responded, " responded to");
  return s;
}

// The timeline: harvested share (%) against seconds, with the detection and the response marked.
Plot timeline(const CampaignResult& r, double duration) {
  Plot p{r.c->id + ": harvested share over time", "seconds since the start", "% of the planned harvest", {}};
  Series got{"harvested", {{r.c->start, 0}}, {}};
  const size_t n = r.answered.size(), step = std::max<size_t>(1, n / 300);
  for (size_t i = 0; i < n; i += step)
    got.xy.emplace_back(r.answered[i].first, 100.0 * double(i + 1) / double(std::max<int64_t>(1, r.c->planned_requests)));
  if (n > 0) got.xy.emplace_back(r.answered[n - 1].first, 100 * r.share());
  const double top = std::max(100 * r.share(), 12.0);
  p.series.push_back(got);
  p.series.push_back({"10% of the harvest", {{0, 10}, {duration, 10}}, {}});
  if (r.detected.happened)
    p.series.push_back({"detected (" + r.detected.action + ")", {{r.detected.at, 0}, {r.detected.at, top}}, {}});
  if (r.responded.happened)
    p.series.push_back({"responded (" + r.responded.action + ")", {{r.responded.at, 0}, {r.responded.at, top}}, {}});
  return p;
}

// Answered requests per bucket of time: benign keys against campaign keys.
Plot traffic(const RunFacts& f, const DbRecord& db, const std::set<int64_t>& campaign_ids) {
  const double width = std::max(1.0, f.traffic_seconds / 40);
  std::map<int64_t, double> benign, harvest;
  for (const auto& [id, rec] : db.keys)
    for (const auto& [t, tokens] : rec.answered_at)
      (campaign_ids.count(id) ? harvest : benign)[int64_t((t - f.clock.start_unix) / width)] += 1 / width;
  Plot p{"Answered requests per second", "seconds since the start", "requests / s", {}};
  Series b{"benign keys", {}, {}}, h{"campaign keys", {}, {}};
  for (int64_t i = 0; i <= int64_t(f.traffic_seconds / width); ++i) {
    b.xy.emplace_back((double(i) + 0.5) * width, benign.count(i) ? benign[i] : 0);
    h.xy.emplace_back((double(i) + 0.5) * width, harvest.count(i) ? harvest[i] : 0);
  }
  p.series = {b, h};
  return p;
}

}  // namespace

nlohmann::json write_sim_report(const RunFacts& f, const DbRecord& db) {
  const SimOptions& o = f.options;
  const double start = f.clock.start_unix;
  std::vector<CampaignResult> results;
  std::set<int64_t> campaign_ids;
  for (const auto& c : *f.campaigns) {
    results.push_back(campaign_result(*c, db, start));
    for (const SimKey& k : c->keys) campaign_ids.insert(k.id);
  }

  // ---- benign keys: what the guard did to them ----
  ojson flagged = ojson::array();
  int64_t requests = 0, answered = 0, n_flagged = 0, n_throttled = 0, n_blocked = 0, limited_keys = 0, limited = 0,
          refused_blocked = 0;
  for (const SimKey& k : f.benign) {
    auto it = db.keys.find(k.id);
    if (it == db.keys.end()) continue;
    const KeyRecord& rec = it->second;
    requests += rec.requests;
    answered += rec.answered;
    limited += rec.refused_limits;
    limited_keys += rec.refused_limits > 0;
    refused_blocked += rec.refused_blocked;
    if (rec.actions.empty()) continue;
    std::set<std::string> kinds;
    ojson actions = ojson::array();
    for (const ActionRow& a : rec.actions) {
      kinds.insert(a.action);
      actions.push_back({{"at_s", a.time - start}, {"action", a.action}, {"score", a.score}, {"reason", a.reason},
                         {"source", a.source}, {"cluster", a.cluster}});
    }
    ++n_flagged;
    // responses include the milder ones: a stripped or marked key is throttled too
    n_throttled += kinds.count("throttle") + kinds.count("strip") + kinds.count("mark") > 0 && kinds.count("block") == 0;
    n_blocked += kinds.count("block") > 0;
    flagged.push_back({{"key", k.name}, {"role", k.role}, {"address", k.address}, {"user_agent", k.user_agent},
                       {"requests", rec.requests}, {"answered", rec.answered}, {"refused_blocked", rec.refused_blocked},
                       {"actions", actions}});
  }
  const int64_t n_benign = int64_t(f.benign.size());
  const double throttled_share = n_benign > 0 ? double(n_throttled) / double(n_benign) : 0;

  // ---- the bar ----
  std::vector<std::string> misses;
  if (!f.server.detect) misses.push_back("the server has no detector (this build does not know guard.detect)");
  for (const CampaignResult& r : results)
    if (!r.detected.happened)
      misses.push_back(r.c->id + " was not detected");
    else if (r.detected.share >= kDetectBefore)
      misses.push_back(cat(r.c->id, " was detected only after ", pct(r.detected.share), " of its harvest"));
  if (n_blocked > 0) misses.push_back(cat(n_blocked, " benign keys were blocked"));
  if (throttled_share > kThrottledAtMost) misses.push_back(cat(pct(throttled_share), " of benign keys were throttled"));
  const std::string bar = "each campaign detected before 10% of its harvest; no benign key blocked; at most 1% throttled";

  // What was found, in this order: each campaign, the benign side, the bar; then what the
  // harvests were worth to a student (sim.students) and the run itself.
  std::vector<std::string> summary;
  for (const CampaignResult& r : results) summary.push_back(campaign_line(r));
  summary.push_back(cat("benign: ", n_benign, " keys, ", thousands(requests), " requests (", thousands(answered),
                        " answered); flagged ", n_flagged, ", throttled ", n_throttled, " (", pct(throttled_share),
                        "), blocked ", n_blocked, "; ", limited_keys, " keys met their ordinary rate limits (",
                        thousands(limited), " requests refused with 429)"));
  std::string verdict = misses.empty() ? "met" : "not met: ";
  for (size_t i = 0; i < misses.size(); ++i) verdict += (i ? "; " : "") + misses[i];
  summary.push_back("the bar (" + bar + "): " + verdict);
  if (f.students.is_object())
    for (const auto& s : f.students["students"]) {
      auto bpb = [](const nlohmann::json& v) { return v.is_number() ? decimals(v.get<double>(), 3) : std::string("failed"); };
      summary.push_back(cat("student of ", s["campaign"].get<std::string>(), " (top-", s["k"].get<int64_t>(),
                            "): val bits/byte ", bpb(s["val_bpb_before_response"]), " from the ",
                            s["windows_before_response"].get<int64_t>(), " windows it had ",
                            s["responded"].get<bool>() ? "before the response" : "in all (never responded to)", " vs ",
                            bpb(s["val_bpb_planned"]), " from its ", s["windows_planned"].get<int64_t>(), " planned"));
    }
  summary.push_back(cat("seed ", o.seed, "; ", secs(f.traffic_seconds), " of traffic, an hour = ",
                        secs(o.hour > 0 ? o.hour : o.duration / 24), "; ", thousands(db.audit_rows), " audit rows, ",
                        db.has_actions ? thousands(db.action_rows) + " action rows" : std::string("no actions table"),
                        " in ", (f.out / "serve.db").string()));

  ojson campaigns = ojson::array();
  for (const CampaignResult& r : results) {
    const Campaign& c = *r.c;
    ojson keys = ojson::array(), addresses = ojson::array();
    std::set<std::string> seen;
    for (const SimKey& k : c.keys) {
      keys.push_back(k.name);
      if (seen.insert(k.address).second) addresses.push_back(k.address);
    }
    ojson timeline = ojson::array();
    const size_t step = std::max<size_t>(1, r.answered.size() / 200);
    for (size_t i = 0; i < r.answered.size(); i += step)
      timeline.push_back({r.answered[i].first, double(i + 1) / double(std::max<int64_t>(1, c.planned_requests))});
    campaigns.push_back(
        {{"id", c.id},
         {"kind", c.kind},
         {"title", c.title},
         {"detected", moment_json(r.detected)},
         {"responded", moment_json(r.responded)},
         {"detected_before_10pct", r.detected.happened && r.detected.share < kDetectBefore},
         {"planned", {{"requests", c.planned_requests}, {"tokens", c.planned_tokens}}},
         {"harvested", {{"requests", r.requests}, {"tokens", r.tokens}, {"share", r.share()}}},
         {"audit_rows", r.audit_rows},
         {"refused_by_limits", r.refused_limits},
         {"refused_blocked", r.refused_blocked},
         {"keys", keys},
         {"keys_detected", r.keys_detected},
         {"keys_responded", r.keys_responded},
         {"addresses", addresses},
         {"user_agent", c.keys.empty() ? "" : c.keys[0].user_agent},
         {"start_s", c.start},
         {"ended", endings(c)},
         {"timeline", timeline}});
  }
  ojson roles = ojson::object();
  for (const SimKey& k : f.benign) roles[k.role] = roles.value(k.role, 0) + 1;
  ojson report = {
      {"summary", summary},
      {"bar", {{"rule", bar}, {"met", misses.empty()}, {"misses", misses}}},
      {"seed", o.seed},
      {"definitions",
       {{"harvested", "status-200 rows of the campaign's keys on /v1/completions in the server's audit table; "
                      "share = those / the planned requests (windows or prompts). After a strip an answer is still a "
                      "200 but lacks what a top-k harvester asked for: the harvester stops at the first such answer"},
        {"detected", "the first row of the actions table naming one of the campaign's keys (any action)"},
        {"responded", "the first throttle, strip, mark or block row naming one of its keys"},
        {"at_s", "seconds since the traffic started (time.start_unix)"}}},
      {"campaigns", campaigns},
      {"benign",
       {{"keys", n_benign},
        {"roles", roles},
        {"requests", requests},
        {"answered", answered},
        {"flagged", n_flagged},
        {"throttled", n_throttled},
        {"throttled_share", throttled_share},
        {"blocked", n_blocked},
        {"refused_blocked", refused_blocked},
        {"rate_limited_keys", limited_keys},
        {"rate_limited_requests", limited},
        {"flagged_keys", flagged}}},
      {"server",
       {{"detector", f.server.detect},
        {"settings", f.server.sets},
        {"unknown_to_this_build", f.server.missing},
        {"config", o.server_config},
        {"model", f.model.string()},
        {"db", (f.out / "serve.db").string()},
        {"audit_rows", db.audit_rows},
        {"actions_table", db.has_actions},
        {"action_rows", db.action_rows}}},
      {"time",
       {{"start_unix", start},
        {"traffic_s", f.traffic_seconds},
        {"wall_s", f.wall_seconds},
        {"hour_s", o.hour > 0 ? o.hour : o.duration / 24},
        {"duration_s", o.duration}}},
      {"students", f.students.is_null() ? ojson("not trained (sim.students = false: set it to compare students; minutes)")
                                        : ojson::parse(f.students.dump())},
      {"config", (f.out / "config.toml").string()}};

  atomic_write_text(f.out / "report.json", report.dump(2) + "\n");

  std::vector<std::vector<std::string>> table = {{"campaign", "keys", "planned requests", "harvested", "detected at",
                                                  "share then", "responded at", "share then", "ended"}};
  for (const CampaignResult& r : results)
    table.push_back({r.c->id, std::to_string(r.c->keys.size()), thousands(r.c->planned_requests), pct(r.share()),
                     r.detected.happened ? secs(r.detected.at) : "not detected",
                     r.detected.happened ? pct(r.detected.share) : "-",
                     r.responded.happened ? secs(r.responded.at) + " (" + r.responded.action + ")" : "no response",
                     r.responded.happened ? pct(r.responded.share) : "-", endings(*r.c)});
  table.push_back({"benign", std::to_string(n_benign), thousands(requests), thousands(answered) + " answered",
                   cat(n_flagged, " flagged"), "-", cat(n_throttled, " throttled, ", n_blocked, " blocked"), "-", "-"});
  std::vector<Plot> plots;
  for (const CampaignResult& r : results) plots.push_back(timeline(r, f.traffic_seconds));
  plots.push_back(traffic(f, db, campaign_ids));
  // The page's paragraph: the bar, the students, the run, the benign side (the campaigns have the
  // table and a section each below).
  std::string notes;
  for (size_t i = results.size() + 1; i < summary.size(); ++i) notes += (notes.empty() ? "" : ". ") + summary[i];
  notes += ". " + summary[results.size()];  // the benign line, after the bar and the students
  std::vector<std::pair<std::string, std::string>> samples;
  for (size_t i = 0; i < results.size(); ++i) samples.emplace_back(results[i].c->id, summary[i]);
  for (const auto& k : flagged) {
    std::string what;
    for (const auto& a : k["actions"])
      what += cat(decimals(a["at_s"].get<double>(), 1), " s  ", a["action"].get<std::string>(), "  score ",
                  decimals(a["score"].get<double>(), 2), "  ", a["reason"].get<std::string>(), "\n");
    samples.emplace_back(cat(k["key"].get<std::string>(), " (", k["role"].get<std::string>(), ", ",
                             k["address"].get<std::string>(), ")"),
                         what);
  }
  atomic_write_text(f.out / "report.html",
                    render_html("Guard simulation: campaigns against benign traffic", table, plots,
                                nlohmann::json::parse(report.dump()), notes, samples,
                                "What was found: each campaign, then each benign key the guard acted on"));
  return nlohmann::json::parse(report.dump());
}

}  // namespace retort::sim
