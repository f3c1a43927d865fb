// What the server saw and did, read back from its database after the run: every audit row by
// key (answered, refused by limits, refused as blocked, tokens, when each harvest answer came)
// and every action row (the detector's and the policy's). The report is computed from these,
// never from what the simulated clients believe happened.
#include <sqlite3.h>

#include <algorithm>

#include "detect/simulate_parts.h"
#include "guard/statement.h"
#include "retort/guard.h"

namespace retort::sim {

using guard_detail::Statement;

bool is_response(const std::string& action) {
  return action == "throttle" || action == "strip" || action == "mark" || action == "block";
}

namespace {

Moment moment_at(const CampaignResult& r, const ActionRow& a, double start) {
  Moment m;
  m.happened = true;
  m.at = a.time - start;
  for (const auto& [t, tokens] : r.answered)
    if (t < m.at) ++m.requests, m.tokens += tokens;
  m.share = r.c->planned_requests > 0 ? double(m.requests) / double(r.c->planned_requests) : 0;
  m.action = a.action;
  m.key = a.key_name;
  m.reason = a.reason;
  return m;
}

}  // namespace

CampaignResult campaign_result(const Campaign& c, const DbRecord& db, double start) {
  CampaignResult r;
  r.c = &c;
  const ActionRow* first = nullptr;
  const ActionRow* first_response = nullptr;
  for (const SimKey& k : c.keys) {
    auto it = db.keys.find(k.id);
    if (it == db.keys.end()) continue;
    const KeyRecord& rec = it->second;
    r.audit_rows += rec.requests;
    r.refused_limits += rec.refused_limits;
    r.refused_blocked += rec.refused_blocked;
    for (const auto& [t, tokens] : rec.answered_at) r.answered.emplace_back(t - start, tokens);
    bool responded = false;
    for (const ActionRow& a : rec.actions) {
      if (!first || a.time < first->time) first = &a;
      if (is_response(a.action)) {
        responded = true;
        if (!first_response || a.time < first_response->time) first_response = &a;
      }
    }
    r.keys_detected += !rec.actions.empty();
    r.keys_responded += responded;
  }
  std::sort(r.answered.begin(), r.answered.end());
  r.requests = int64_t(r.answered.size());
  for (const auto& a : r.answered) r.tokens += a.second;
  if (first) r.detected = moment_at(r, *first, start);
  if (first_response) r.responded = moment_at(r, *first_response, start);
  return r;
}


DbRecord read_db(const std::filesystem::path& file) {
  DbRecord r;
  GuardDb db(file);
  std::lock_guard<std::mutex> lock(db.mutex());
  {
    Statement s(db,
                "SELECT key_id, time, status, endpoint, prompt_tokens, completion_tokens FROM audit "
                "ORDER BY time, id");
    while (s.step()) {
      KeyRecord& k = r.keys[s.integer(0)];
      ++r.audit_rows;
      ++k.requests;
      const int status = int(s.integer(2));
      const int64_t tokens = s.integer(4) + s.integer(5);
      if (status == 200) {
        ++k.answered;
        k.tokens += tokens;
        if (s.text(3) == "/v1/completions" || s.text(3) == "/v1/chat/completions")
          k.answered_at.emplace_back(s.real(1), tokens);
      } else if (status == 429) {
        ++k.refused_limits;
      } else if (status == 403) {
        ++k.refused_blocked;
      }
    }
  }
  Statement has(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'actions'");
  r.has_actions = has.step() && has.integer(0) > 0;
  if (!r.has_actions) return r;
  std::map<std::string, int64_t> by_name;
  {
    Statement s(db, "SELECT id, name FROM keys");
    while (s.step()) by_name[s.text(1)] = s.integer(0);
  }
  Statement s(db,
              "SELECT time, coalesce(key_id, 0), coalesce(key_name, ''), coalesce(cluster, ''), action, "
              "coalesce(score, 0), coalesce(reason, ''), coalesce(source, '') FROM actions ORDER BY time, id");
  while (s.step()) {
    ActionRow a;
    a.time = s.real(0);
    a.key_id = s.integer(1);
    a.key_name = s.text(2);
    a.cluster = s.text(3);
    a.action = s.text(4);
    a.score = s.real(5);
    a.reason = s.text(6);
    a.source = s.text(7);
    if (a.key_id == 0 && by_name.count(a.key_name)) a.key_id = by_name[a.key_name];
    ++r.action_rows;
    r.keys[a.key_id].actions.push_back(a);
  }
  return r;
}

}  // namespace retort::sim
