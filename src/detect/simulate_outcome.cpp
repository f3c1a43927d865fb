// What the server saw and did, read back from its database after the run: every audit row by
// key (answered, refused by limits, refused as blocked, tokens, when each harvest answer came)
// and every action row (the detector's and the policy's). The report is computed from these,
// never from what the simulated clients believe happened.
#include <sqlite3.h>

#include "detect/simulate_parts.h"
#include "guard/statement.h"
#include "retort/guard.h"

namespace retort::sim {

using guard_detail::Statement;

bool is_response(const std::string& action) {
  return action == "throttle" || action == "strip" || action == "mark" || action == "block";
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
