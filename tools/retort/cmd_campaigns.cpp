// `retort guard campaigns | explain | act`: what the campaign detector sees in a guard
// database (the audit log replayed through the policy of --config), and an operator's decisions.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common.h"
#include "retort/actions.h"
#include "retort/detect.h"
#include "retort/detect_worker.h"
#include "retort/error.h"
#include "retort/guard.h"
#include "retort/telemetry.h"
#include "retort/text.h"

namespace retort::cli {

namespace {

struct CampaignArgs {
  std::string db = "serve.db";
  ConfigArgs config;
  std::string key, action, reason;
  bool json = false;
  int64_t top = 20, points = 10;
  double for_seconds = 0;
};

std::string no_db(const std::string& db) { return "no guard database " + db + " (retort serve --db makes one)"; }

DetectPolicy policy_of(const ConfigArgs& config, int64_t* chunks) {
  DetectPolicy p = read_options(resolve_config(config)).guard;
  *chunks = p.reference.empty() ? 0 : ReferenceIndex(load_text_corpus(p.reference).documents).chunks();
  return p;
}

// Every audit row, oldest first, through `detector`; `each` sees each row after it is observed.
void replay(const std::shared_ptr<GuardDb>& db, Detector& detector, const std::function<void(const AuditRow&)>& each = {}) {
  AuditLog log(db);
  int64_t last = 0;
  for (;;) {
    const std::vector<AuditRow> rows = log.since(last, 20000);
    for (const AuditRow& r : rows) {
      detector.observe(r);
      if (each) each(r);
    }
    if (rows.empty()) break;
    last = rows.back().id;
  }
}

std::string fired(const Assessment& a) {
  std::string s;
  for (const SignalValue& v : a.signals)
    if (v.fired) s += (s.empty() ? "" : ",") + std::string(signal_name(v.kind));
  return s.empty() ? "-" : s;
}

std::string in_force_text(const ActionsInForce& f, int64_t key_id) {
  const auto r = f.find(key_id, 1e18);
  if (!r) return "";
  return cat("  [in force: ", response_name(r->action), " by ", r->source, " #", r->id, ", ", iso_utc(int64_t(r->time)), "]");
}

void print_assessment(const Assessment& a, const ActionsInForce* f) {
  std::printf("  %.2f  %-8s %s  (%s requests, %s tokens)%s\n", a.score, response_name(a.response), a.name.c_str(),
              thousands(a.requests).c_str(), thousands(a.tokens).c_str(),
              f && !a.cluster ? in_force_text(*f, a.key_ids.front()).c_str() : "");
  if (a.cluster) {
    std::string keys;
    for (const std::string& k : a.key_names) keys += (keys.empty() ? "" : " ") + k;
    std::printf("        keys: %s\n", keys.c_str());
  }
  std::printf("        why: %s\n", a.reason().c_str());
}

void campaigns(const CampaignArgs& a) {
  auto db = open_existing_db(a.db, no_db(a.db));
  int64_t chunks = 0;
  DetectPolicy p = policy_of(a.config, &chunks);
  Detector d(p, chunks);
  const auto t0 = std::chrono::steady_clock::now();
  replay(db, d);
  const std::vector<Assessment> clusters = d.clusters(), keys = d.keys();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "guard campaigns: %s audit rows read and scored in %.2f s (%s rows/s), %zu keys, %zu clusters\n",
               thousands(d.observed()).c_str(), took, thousands(int64_t(double(d.observed()) / std::max(took, 1e-9))).c_str(),
               keys.size(), clusters.size());
  ActionsInForce f;
  for (const ActionRow& r : ActionStore(db).since(0)) f.apply(r);
  if (a.json) {
    nlohmann::json out = {{"rows", d.observed()}, {"clusters", nlohmann::json::array()}, {"keys", nlohmann::json::array()},
                          {"in_force", nlohmann::json::array()}};
    for (const Assessment& c : clusters) out["clusters"].push_back(c.to_json());
    for (const Assessment& k : keys) out["keys"].push_back(k.to_json());
    for (const ActionRow& r : f.all())
      out["in_force"].push_back({{"id", r.id}, {"key", r.key_name}, {"action", response_name(r.action)}, {"source", r.source},
                                 {"time", r.time}, {"score", r.score}, {"reason", r.reason}, {"cluster", r.cluster}});
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("%s audit rows of %s replayed through the policy (scores 0..1; observe >= %.2f, throttle >= %.2f, strip >= %.2f, "
              "mark >= %.2f, block >= %.2f)\n",
              thousands(d.observed()).c_str(), a.db.c_str(), p.observe, p.throttle, p.strip, p.mark, p.block);
  std::printf("\nclusters (keys linked by address, user agent, template, request shape or timing; scored as one actor):\n");
  if (clusters.empty()) std::printf("  none\n");
  for (const Assessment& c : clusters) print_assessment(c, nullptr);
  std::printf("\nkeys, highest score first (top %lld of %zu):\n", static_cast<long long>(a.top), keys.size());
  for (size_t i = 0; i < keys.size() && int64_t(i) < a.top; ++i) print_assessment(keys[i], &f);
}

void explain(const CampaignArgs& a) {
  auto db = open_existing_db(a.db, no_db(a.db));
  const std::optional<ApiKey> key = KeyStore(db).find(a.key);
  if (!key) fail("no API key named '", a.key, "' in ", a.db, " (retort keys list --db ", a.db, " shows them)");
  int64_t chunks = 0;
  DetectPolicy p = policy_of(a.config, &chunks);
  int64_t total = 0;
  {
    Detector count(p, chunks);
    replay(db, count, [&](const AuditRow& r) { total += r.key_id == key->id && Detector::counts(r); });
  }
  if (total == 0) fail("key '", a.key, "' has made no request to a model in ", a.db);
  std::printf("key %s: %s requests; its score over time (the policy of --config; scores 0..1):\n", a.key.c_str(), thousands(total).c_str());
  std::printf("  %9s  %-20s  %5s  %-8s  %s\n", "requests", "time (UTC)", "score", "response", "signals that fired");
  Detector d(p, chunks);
  int64_t seen = 0, next = 0;
  replay(db, d, [&](const AuditRow& r) {
    if (r.key_id != key->id || !Detector::counts(r)) return;
    ++seen;
    const int64_t step = std::max<int64_t>(1, total / std::max<int64_t>(1, a.points));
    if (seen < next && seen != total) return;
    next = seen + step;
    const Assessment s = d.assess_key(key->id);
    std::printf("  %9s  %-20s  %5.2f  %-8s  %s\n", thousands(seen).c_str(), iso_utc(int64_t(r.time)).c_str(), s.score,
                response_name(s.response), fired(s).c_str());
  });
  const Assessment now = d.assess_key(key->id);
  std::printf("\nsignals now (value / threshold, weight):\n");
  for (const SignalValue& v : now.signals)
    std::printf("  %s %-19s %10.3g / %-10.3g %.2f  %s\n", v.fired ? "*" : " ", signal_name(v.kind), v.value, v.threshold, v.weight,
                v.sentence.c_str());
  for (const Assessment& c : d.clusters())
    if (std::find(c.key_ids.begin(), c.key_ids.end(), key->id) != c.key_ids.end()) {
      std::printf("\nits cluster (scored as one actor):\n");
      print_assessment(c, nullptr);
      for (const std::string& l : c.links) std::printf("        link: %s\n", l.c_str());
    }
  const std::vector<ActionRow> rows = ActionStore(db).for_key(key->id);
  std::printf("\nactions (%zu):\n", rows.size());
  for (const ActionRow& r : rows)
    std::printf("  #%lld %s  %-8s by %-8s score %.2f%s  %s\n", static_cast<long long>(r.id), iso_utc(int64_t(r.time)).c_str(),
                response_name(r.action), r.source.c_str(), r.score, r.until > 0 ? cat(" until ", iso_utc(int64_t(r.until))).c_str() : "",
                r.reason.c_str());
}

void act(const CampaignArgs& a) {
  auto db = open_existing_db(a.db, no_db(a.db));
  const Response action = response_from_name(a.action);
  const double until = a.for_seconds > 0
                           ? std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() + a.for_seconds
                           : 0;
  const ActionRow r = operator_action(db, a.key, action, a.reason, until);
  std::printf("#%lld %s %s\n", static_cast<long long>(r.id), response_name(r.action), r.key_name.c_str());
  std::fprintf(stderr, "action #%lld: %s for key %s by the operator%s; a running retort serve --db %s enforces it within one "
               "guard.interval, and the policy leaves it alone\n",
               static_cast<long long>(r.id), response_name(r.action), r.key_name.c_str(),
               until > 0 ? cat(" until ", iso_utc(int64_t(until))).c_str() : "", a.db.c_str());
}

}  // namespace

void register_guard_campaigns(CLI::App& guard) {
  static CampaignArgs a;
  auto add_db = [](CLI::App* cmd) { add_db_option(cmd, a.db); };

  auto* camp = guard.add_subcommand(
      "campaigns",
      "Distillation campaigns in a guard database: its audit log replayed through the detector with the\n"
      "policy of --config (guard.* keys), clusters of keys that act as one (shared address, user agent,\n"
      "prompt template, request shape, timing) and keys, highest score first, each with the signals that\n"
      "fired in words, and the actions in force. Scores are 0..1: the weight of the signals that fired.\n"
      "Example: retort guard campaigns --db serve.db --config configs/guard.toml");
  add_db(camp);
  add_config_args(camp, a.config);
  camp->add_option("--top", a.top, "keys listed")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  camp->add_flag("--json", a.json, "everything as one JSON object (clusters, keys with every signal, actions in force)");
  camp->callback([] { campaigns(a); });

  auto* exp = guard.add_subcommand(
      "explain",
      "The signals behind one key's score, over time: its score and the signals that fired at points of\n"
      "its history, every signal now (value, threshold, weight, a sentence), its cluster and the links that\n"
      "make it one, and its action rows.\n"
      "Example: retort guard explain --db serve.db --key k-0042");
  add_db(exp);
  add_config_args(exp, a.config);
  exp->add_option("--key", a.key, "the API key's name")->required();
  exp->add_option("--points", a.points, "points of its history shown")->capture_default_str()->check(CLI::Range(1, 10000));
  exp->callback([] { explain(a); });

  auto* actc = guard.add_subcommand(
      "act",
      "An operator's decision about a key, as a durable action row: observe | throttle | strip | mark | block\n"
      "(each includes the milder ones before it: a stripped key is also throttled) or allow (nothing\n"
      "enforced). A running server enforces it within one guard.interval; the policy never overrides an\n"
      "operator's row.\n"
      "Example: retort guard act --db serve.db --key k-0042 --action block --reason \"confirmed harvest\"");
  add_db(actc);
  actc->add_option("--key", a.key, "the API key's name")->required();
  actc->add_option("--action", a.action, "observe | throttle | strip | mark | block | allow")->required();
  actc->add_option("--reason", a.reason, "why, in words a colleague can check later")->required();
  actc->add_option("--for", a.for_seconds, "seconds until the action lapses (default: until replaced)")->check(CLI::Range(0.0, 1e10));
  actc->callback([] { act(a); });
}

}  // namespace retort::cli
