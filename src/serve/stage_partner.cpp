// Stage "partner rules" of the guard chain (chain.h): partners' indicators (retort/partner_rules.h)
// matched against a request right after authentication (address, user agent, account) and again
// once its prompt and shape are known (template, SimHash, request shape). A match stronger than the
// key's action in force becomes a durable action row (source "partner", committed before it is
// enforced), is applied to the table in force at once, and the request then meets it like any
// other (a block refuses this very request). An operator's row, allow included, is never
// overridden; the detector's worker only escalates, so it never undoes a partner's row.
// Also owns the intel worker (retort/intel_worker.h) of intel.taxii / intel.pull.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "retort/intel_worker.h"
#include "retort/partner_rules.h"
#include "retort/stix.h"
#include "serve/chain.h"

namespace retort::serve {

struct PartnerStage {
  PartnerStage(const ServeOptions& o, const std::shared_ptr<GuardDb>& db)
      : options(o.intel), store(db), actions(db) {
    secret = options.group_secret.empty() ? store.own_secret() : options.group_secret;
    rules.refresh(store);
  }
  ~PartnerStage() {
    if (worker) worker->stop();
  }

  // The index follows the rules table: at most once a second from the request path (a pull by
  // `retort intel pull` in another process), at once after the worker's own pulls.
  void refresh_when_due() {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t due = next_refresh.load();
    if (now < due || !next_refresh.compare_exchange_strong(due, now + 1000)) return;
    try {
      rules.refresh(store);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "intel: partner rules not refreshed: %s\n", e.what());
    }
  }

  IntelOptions options;
  IntelStore store;  // on the chain's connection
  ActionStore actions;
  PartnerRules rules;
  std::string secret;  // pseudonyms of key names (intel.group_secret, else the database's own)
  std::mutex acting;   // one partner row at a time: concurrent requests of a key write it once
  std::atomic<int64_t> next_refresh{0};
  std::unique_ptr<IntelWorker> worker;
};

void GuardChain::start_partner() {
  partner_ = std::make_shared<PartnerStage>(o_, db_);
  if (!partner_->rules.empty())
    std::fprintf(stderr, "intel: %zu partner rules in force\n", partner_->rules.size());
  if (o_.intel.taxii || o_.intel.pull) {
    std::weak_ptr<PartnerStage> stage = partner_;
    partner_->worker = std::make_unique<IntelWorker>(o_.db, o_.intel, [stage] {
      if (auto s = stage.lock()) s->rules.refresh(s->store);
    });
    partner_->worker->start();
    std::fprintf(
        stderr, "intel: %s%s%s\n",
        o_.intel.taxii ? cat("publishing every ", o_.intel.publish_interval, " s").c_str() : "",
        o_.intel.taxii && o_.intel.pull ? ", " : "",
        o_.intel.pull ? cat("pulling partners every ", o_.intel.pull_interval, " s").c_str() : "");
  }
}

void GuardChain::match_partners(Call& call, bool prompt_known) {
  if (!partner_ || !call.key || call.key->admin)
    return;  // the operator's own keys answer to the operator
  PartnerStage& s = *partner_;
  s.refresh_when_due();
  if (s.rules.empty()) return;
  PartnerProbe p;
  p.address = call.audit.client;
  p.user_agent = call.audit.user_agent;
  p.account_name = call.key->name;
  if (s.rules.has("account")) p.account = pseudonym(s.secret, call.key->name);
  if (prompt_known) {
    p.prompt_prefix = call.audit.prompt_prefix;
    p.prompt_simhash = call.audit.prompt_simhash;
    p.shape = request_shape(call.audit);
  }
  const std::optional<IntelRule> m = s.rules.match(p, call.audit.time);
  if (!m) return;
  {
    std::lock_guard<std::mutex> lock(s.acting);
    if (!partner_may_act(in_force_->find(call.key->id, call.audit.time), m->action)) return;
    const std::string matched = PartnerRules::matched_text(*m, p);
    const std::string tlp = m->tlp.empty() ? "no TLP" : "TLP:" + m->tlp;
    ActionRow row;
    row.time = unix_now();
    row.key_id = call.key->id;
    row.key_name = call.key->name;
    row.action = m->action;
    row.score = double(m->confidence) / 100;
    row.reason = cat("partner ", m->source, "'s indicator ", m->indicator, " (confidence ",
                     m->confidence, ", ", tlp, ") matched the ", matched, "; intel.act.",
                     m->kind == "simhash" ? "template" : m->kind, " = ", response_name(m->action));
    row.signals = json::array({{{"signal", "partner_indicator"},
                                {"value", row.score},
                                {"threshold", double(s.options.min_confidence) / 100},
                                {"weight", 1},
                                {"fired", true},
                                {"sentence", row.reason},
                                {"indicator", m->indicator},
                                {"partner", m->source},
                                {"kind", m->kind},
                                {"tlp", m->tlp}}})
                      .dump(-1, ' ', false, json::error_handler_t::replace);
    row.source = "partner";
    row.until = m->valid_until;
    s.actions.append(row);  // durable before it is enforced
    // Every row up to this one, in id order: a row another process wrote just before is not
    // skipped.
    for (const ActionRow& r : s.actions.since(in_force_->last_id())) in_force_->apply(r);
    try {
      s.store.log({0, row.time, "acted", m->source, kInboxCollection, m->indicator,
                   cat(response_name(m->action), " key '", call.key->name, "': ", matched)});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "intel: event not logged: %s\n", e.what());
    }
    std::fprintf(stderr, "guard: %s key '%s' on %s\n", response_name(m->action),
                 call.key->name.c_str(), row.reason.c_str());
  }
  enforce(call);  // the row in force now: a block refuses this request
}

}  // namespace retort::serve
