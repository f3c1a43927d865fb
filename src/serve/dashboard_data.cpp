// The dashboard's views as JSON (serve/dashboard_data.h).
#include "serve/dashboard_data.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "guard/statement.h"
#include "retort/intel.h"
#include "retort/verifications.h"

namespace retort::serve {

namespace {

using guard_detail::Statement;

struct Usage {
  int64_t requests = 0, tokens = 0, requests_hour = 0, tokens_hour = 0, errors = 0;
  double last = 0;
};

// Per key id, from the audit log: all requests, those of the last hour (from `hour_ago`), errors.
std::unordered_map<int64_t, Usage> usage_by_key(GuardDb& db, double hour_ago) {
  std::unordered_map<int64_t, Usage> out;
  std::lock_guard<std::mutex> lock(db.mutex());
  Statement s(db,
              "SELECT key_id, count(*), coalesce(sum(prompt_tokens + completion_tokens), 0), max(time), "
              "sum(time >= ?1), coalesce(sum(CASE WHEN time >= ?1 THEN prompt_tokens + completion_tokens ELSE 0 END), 0), "
              "sum(status >= 400) FROM audit WHERE key_id != 0 GROUP BY key_id");
  s.bind(1, hour_ago);
  while (s.step()) {
    Usage& u = out[s.integer(0)];
    u.requests = s.integer(1);
    u.tokens = s.integer(2);
    u.last = s.real(3);
    u.requests_hour = s.integer(4);
    u.tokens_hour = s.integer(5);
    u.errors = s.integer(6);
  }
  return out;
}

int64_t unkeyed_requests(GuardDb& db, double hour_ago) {
  std::lock_guard<std::mutex> lock(db.mutex());
  Statement s(db, "SELECT count(*) FROM audit WHERE key_id = 0 AND time >= ?");
  s.bind(1, hour_ago);
  return s.step() ? s.integer(0) : 0;
}

json action_json(const ActionRow& r) {
  json signals = json::array();
  if (!r.signals.empty()) {
    json parsed = json::parse(r.signals, nullptr, false);
    if (parsed.is_array()) signals = std::move(parsed);
  }
  return {{"id", r.id},         {"time", r.time},     {"key", r.key_name}, {"key_id", r.key_id},
          {"cluster", r.cluster}, {"action", response_name(r.action)}, {"score", r.score},
          {"reason", r.reason}, {"signals", signals}, {"source", r.source}, {"until", r.until}};
}

// "alice~bob (address 203.0.113.9 + timing)" -> {a, b, why: [...]}; key names hold no '~' or ' '.
json edge_of(const std::string& link) {
  const size_t tilde = link.find('~'), open = link.find(" (");
  if (tilde == std::string::npos || open == std::string::npos || open < tilde) return nullptr;
  std::string why = link.substr(open + 2);
  if (!why.empty() && why.back() == ')') why.pop_back();
  json parts = json::array();
  for (size_t at = 0;;) {
    const size_t plus = why.find(" + ", at);
    parts.push_back(why.substr(at, plus == std::string::npos ? std::string::npos : plus - at));
    if (plus == std::string::npos) break;
    at = plus + 3;
  }
  return {{"a", link.substr(0, tilde)}, {"b", link.substr(tilde + 1, open - tilde - 1)}, {"why", parts}};
}

// Evidence::alpha (retort/evidence.h, torch-side): below it `retort guard verify` calls a suspect marked.
constexpr double kVerifyAlpha = 1e-6;

const char* kViews[] = {"keys", "campaigns", "actions", "verifications", "intel"};

}  // namespace

GuardDb& DashboardData::db() {
  if (!db_) db_ = std::make_shared<GuardDb>(chain_.db()->file());
  return *db_;
}

json DashboardData::snapshot() const {
  const DetectWorker* w = chain_.detect_worker();
  if (!w) return {{"enabled", false}, {"observed", 0}, {"updated", 0}, {"keys", json::array()}, {"clusters", json::array()}};
  return w->snapshot();
}

json DashboardData::view(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  json out;
  if (name == "keys") out = keys();
  else if (name == "campaigns") out = campaigns();
  else if (name == "actions") out = actions();
  else if (name == "verifications") out = verifications();
  else if (name == "intel") out = intel();
  else {
    std::string names;
    for (const char* v : kViews) names += (names.empty() ? "" : ", ") + std::string(v);
    throw ApiError(404, "invalid_request_error", "unknown_view", cat("no dashboard view '", name.substr(0, 40), "' (the views: ", names, ")"));
  }
  out["view"] = name;
  out["now"] = unix_now();
  return out;
}

json DashboardData::keys() {
  GuardDb& d = db();
  const double now = unix_now(), hour_ago = now - 3600;
  const auto usage = usage_by_key(d, hour_ago);
  ActionsInForce in_force;
  for (const ActionRow& r : ActionStore(db_).since(0)) in_force.apply(r);
  const json snap = snapshot();
  std::unordered_map<std::string, const json*> assessed;
  for (const json& k : snap.at("keys")) assessed[k.at("name").get<std::string>()] = &k;

  json rows = json::array();
  int64_t requests_hour = 0, tokens_hour = 0, active = 0;
  std::map<std::string, int64_t> by_action;
  for (const ApiKey& k : KeyStore(db_).list()) {
    const Usage u = usage.count(k.id) ? usage.at(k.id) : Usage{};
    requests_hour += u.requests_hour;
    tokens_hour += u.tokens_hour;
    if (u.requests_hour > 0) ++active;
    json row = {{"name", k.name},
                {"prefix", k.prefix},
                {"created", k.created},
                {"admin", k.admin},
                {"revoked", k.revoked},
                {"rpm", k.limits.rpm},
                {"tpm", k.limits.tpm},
                {"quota_tokens", k.limits.quota_tokens},
                {"used_tokens", k.used_tokens},
                {"requests", u.requests},
                {"tokens", u.tokens},
                {"requests_hour", u.requests_hour},
                {"tokens_hour", u.tokens_hour},
                {"errors", u.errors},
                {"last_seen", u.last},
                {"action", nullptr},
                {"score", nullptr},
                {"earned", nullptr}};
    if (const auto a = in_force.find(k.id, now)) {
      row["action"] = {{"action", response_name(a->action)}, {"source", a->source}, {"id", a->id},
                       {"time", a->time},                    {"reason", a->reason}, {"until", a->until}};
      ++by_action[response_name(a->action)];
    }
    if (const auto it = assessed.find(k.name); it != assessed.end()) {
      row["score"] = it->second->at("score");
      row["earned"] = it->second->at("response");
    }
    rows.push_back(std::move(row));
  }
  // Keys under an action first (strongest first), then the busiest.
  auto rank = [](const json& r) {
    if (r.at("action").is_null()) return 0;
    const Response a = response_from_name(r.at("action").at("action").get<std::string>());
    return a == Response::allow ? 1 : 2 + int(a);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const json& x, const json& y) {
    const int rx = rank(x), ry = rank(y);
    if (rx != ry) return rx > ry;
    return x.at("requests").get<int64_t>() > y.at("requests").get<int64_t>();
  });
  return {{"keys", rows},
          {"summary",
           {{"keys", rows.size()},
            {"active_hour", active},
            {"requests_hour", requests_hour},
            {"tokens_hour", tokens_hour},
            {"unkeyed_hour", unkeyed_requests(d, hour_ago)},
            {"actions", by_action},
            {"clusters", snap.at("clusters").size()},
            {"detect", snap.at("enabled")}}}};
}

json DashboardData::campaigns() {
  db();
  json snap = snapshot();
  const double now = unix_now();
  ActionsInForce in_force;
  for (const ActionRow& r : ActionStore(db_).since(0)) in_force.apply(r);
  // The action in force per key name (the graph colours keys by it where it exists).
  json acted = json::object();
  for (const ActionRow& r : in_force.all())
    if (in_force.find(r.key_id, now)) acted[r.key_name] = {{"action", response_name(r.action)}, {"source", r.source}, {"id", r.id}};
  for (json& c : snap.at("clusters")) {
    json edges = json::array();
    for (const json& l : c.at("links")) {
      json e = edge_of(l.get<std::string>());
      if (!e.is_null()) edges.push_back(std::move(e));
    }
    c["edges"] = std::move(edges);
  }
  const DetectPolicy& p = chain_.policy();
  json signals = json::array();
  for (int i = 0; i < kSignalKinds; ++i)
    signals.push_back({{"signal", signal_name(SignalKind(i))}, {"threshold", p.signals[size_t(i)].threshold},
                       {"weight", p.signals[size_t(i)].weight}});
  snap["in_force"] = std::move(acted);
  snap["policy"] = {{"min_requests", p.min_requests}, {"observe", p.observe}, {"throttle", p.throttle}, {"strip", p.strip},
                    {"mark", p.mark},                 {"block", p.block},     {"interval", p.interval}, {"signals", signals},
                    {"link_threshold", p.link_threshold}};
  return snap;
}

json DashboardData::actions() {
  db();
  std::vector<ActionRow> rows = ActionStore(db_).since(0);
  ActionsInForce in_force;
  for (const ActionRow& r : rows) in_force.apply(r);
  const double now = unix_now();
  std::map<std::string, int64_t> by_source, in_force_by_action;
  json out = json::array();
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
    ++by_source[it->source];
    const auto current = in_force.find(it->key_id, now);
    const bool live = current && current->id == it->id;
    if (live) ++in_force_by_action[response_name(it->action)];
    if (out.size() >= 500) continue;
    json a = action_json(*it);
    a["in_force"] = live;
    out.push_back(std::move(a));
  }
  return {{"actions", out}, {"summary", {{"total", rows.size()}, {"by_source", by_source}, {"in_force", in_force_by_action}}}};
}

json DashboardData::verifications() {
  db();
  json out = json::array();
  int64_t carries = 0;
  for (const VerificationRow& v : VerificationStore(db_).recent(200)) {
    json keys = json::array(), usage = json::parse(v.usage.empty() ? "[]" : v.usage, nullptr, false);
    if (usage.is_array())
      for (const json& u : usage)
        if (u.is_object() && u.contains("key") && u.at("key").is_string()) keys.push_back(u.at("key"));
    const bool marked = v.p_value < kVerifyAlpha;
    carries += marked;
    out.push_back({{"id", v.id},
                   {"time", v.time},
                   {"suspect", v.suspect},
                   {"method", v.method},
                   {"p_value", v.p_value},
                   {"tokens", v.tokens},
                   {"watermark_key", v.watermark_key},
                   {"control_p", v.control_p_value < 0 ? json(nullptr) : json(v.control_p_value)},
                   {"carries", marked},
                   {"detail", v.headline},
                   {"evidence", v.evidence_path},
                   {"keys", keys},
                   {"usage", usage.is_array() ? usage : json::array()}});
  }
  return {{"verifications", out}, {"summary", {{"total", out.size()}, {"carries", carries}}}};
}

json DashboardData::intel() {
  db();
  IntelStore store(db_);
  json events = json::array();
  std::map<std::string, int64_t> by_direction;
  {
    std::lock_guard<std::mutex> lock(db_->mutex());
    Statement s(*db_, "SELECT direction, count(*) FROM intel_events GROUP BY direction");
    while (s.step()) by_direction[s.text(0)] = s.integer(1);
  }
  for (const IntelEvent& e : store.events(300)) {
    events.push_back({{"id", e.id},
                      {"time", e.time},
                      {"direction", e.direction},
                      {"peer", e.peer},
                      {"collection", e.collection},
                      {"object_id", e.object_id},
                      {"detail", e.detail}});
  }
  json partners = json::array();
  for (const IntelStore::Partner& p : store.partners())  // never the token
    partners.push_back({{"name", p.name}, {"url", p.url}, {"collection", p.collection}, {"added", p.added}});
  json rules = json::array();
  const double now = unix_now();
  int64_t live = 0;
  for (const IntelRule& r : store.rules()) {
    const bool valid = r.valid_until == 0 || r.valid_until > now;
    live += valid;
    if (rules.size() < 300)
      rules.push_back({{"indicator", r.indicator}, {"source", r.source}, {"kind", r.kind}, {"value", r.value},
                       {"action", response_name(r.action)}, {"confidence", r.confidence}, {"tlp", r.tlp},
                       {"valid_until", r.valid_until}, {"created", r.created}, {"valid", valid}});
  }
  const IntelOptions& o = options_.intel;
  return {{"events", events},
          {"partners", partners},
          {"rules", rules},
          {"options",
           {{"taxii", o.taxii}, {"provider", o.provider}, {"tlp", o.tlp}, {"pseudonymise", o.pseudonymise},
            {"share_at", response_name(o.share_at)}, {"pull", o.pull}, {"min_confidence", o.min_confidence}}},
          {"summary", {{"events", by_direction}, {"partners", partners.size()}, {"rules", live}}}};
}

}  // namespace retort::serve
