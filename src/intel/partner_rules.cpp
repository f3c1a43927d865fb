// Partners' indicators as guard rules and the request path's index of them
// (retort/partner_rules.h).
#include "retort/partner_rules.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <unordered_map>

#include "retort/error.h"
#include "retort/stix.h"
#include "retort/telemetry.h"

namespace retort {

Response partner_action(const std::string& kind, const IntelOptions& o) {
  if (kind == "address") return o.act_address;
  if (kind == "user_agent") return o.act_user_agent;
  if (kind == "account") return o.act_account;
  if (kind == "template" || kind == "simhash") return o.act_template;
  if (kind == "shape") return o.act_shape;
  return Response::none;
}

std::vector<IntelRule> rules_from_indicator(const nlohmann::json& ind, const std::string& source,
                                            const IntelOptions& o, double now, std::string* why) {
  auto refuse = [&](const std::string& reason) {
    if (why) *why = reason;
    return std::vector<IntelRule>{};
  };
  try {
    if (!ind.is_object() || ind.value("type", "") != "indicator") return refuse("not an indicator");
    const std::string id = ind.value("id", "");
    if (id.empty()) return refuse("an indicator without an id");
    if (ind.value("pattern_type", "") != "stix")
      return refuse(cat(id, ": pattern_type '", ind.value("pattern_type", ""), "' is not stix"));
    const std::string pattern = ind.value("pattern", "");
    const auto kv = parse_indicator_pattern(pattern);
    if (!kv)
      return refuse(
          cat(id, ": the pattern ", pattern.substr(0, 200), " is not one retort can match"));
    IntelRule r;
    r.indicator = id;
    r.version = ind.value("modified", ind.value("created", ""));
    r.source = source;
    r.kind = kv->first;
    r.value = kv->second;
    r.confidence = ind.contains("confidence") && ind["confidence"].is_number_integer()
                       ? ind["confidence"].get<int64_t>()
                       : 0;
    r.tlp = tlp_of(ind);
    if (ind.contains("valid_until") && ind["valid_until"].is_string())
      r.valid_until = parse_stix_time(ind["valid_until"]);
    r.created = now;
    const bool revoked = ind.value("revoked", false);
    const bool expired = r.valid_until > 0 && r.valid_until <= now;
    r.action = revoked || expired || r.confidence < o.min_confidence ? Response::none
                                                                     : partner_action(r.kind, o);
    if (r.action == Response::allow)
      r.action = Response::none;  // a partner never allows a key here
    if (why) *why = "";
    return {r};
  } catch (const std::exception& e) {
    return refuse(
        cat(ind.is_object() ? ind.value("id", "an indicator") : "an indicator", ": ", e.what()));
  }
}

int64_t update_partner_rules(IntelStore& store, const std::string& collection,
                             const std::vector<std::string>& ids, const IntelOptions& o,
                             double now) {
  std::map<std::string, int64_t> held;  // indicator -> the version (us) its rules came from
  for (const IntelRule& r : store.rules()) {
    try {
      held[r.indicator] = std::max(held[r.indicator], parse_stix_time_us(r.version));
    } catch (const std::exception&) {
      held[r.indicator] = std::max<int64_t>(held[r.indicator], 0);
    }
  }
  int64_t written = 0;
  std::vector<std::string> seen;
  for (const std::string& id : ids) {
    if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;
    seen.push_back(id);
    const std::optional<StoredObject> s = store.latest(collection, id);
    if (!s || s->type != "indicator") continue;
    const std::vector<IntelRule> rules = rules_from_indicator(s->object, s->source, o, now);
    auto it = held.find(id);
    if (it == held.end() && rules.empty()) continue;  // nothing held, nothing to hold: no write
    int64_t version = 0;
    try {
      version = parse_stix_time_us(s->version);
    } catch (const std::exception&) {
    }
    if (it != held.end() && it->second >= version)
      continue;  // already from this version or a newer one
    store.replace_rules(id, rules);
    written += int64_t(rules.size());
  }
  return written;
}

bool partner_may_act(const std::optional<ActionRow>& current, Response earned) {
  if (earned == Response::none || earned == Response::allow) return false;
  if (!current) return true;
  if (current->source == "operator" || current->action == Response::allow) return false;
  return earned > current->action;
}

std::string partner_reason_for_client(const ActionRow& row) {
  std::string tlp;
  try {
    const nlohmann::json signals = nlohmann::json::parse(row.signals);
    for (const nlohmann::json& s : signals)
      if (s.is_object() && s.contains("tlp") && s["tlp"].is_string())
        tlp = s["tlp"].get<std::string>();
  } catch (const std::exception&) {
  }
  if (tlp == "white" || tlp == "clear") return row.reason;
  std::string upper = tlp;
  for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
  const std::string shown = tlp.empty() ? "no TLP marking" : "TLP:" + upper;
  return cat("the request matched threat intelligence a partner provider shared (", shown,
             "; the details are withheld from clients)");
}

// ---- the index ---------------------------------------------------------------------

struct PartnerRules::Index {
  std::unordered_multimap<std::string, IntelRule>
      exact;  // "kind\0value" -> rule (address, user_agent, account, shape)
  std::unordered_multimap<uint64_t, IntelRule> prefixes;  // template
  std::vector<std::pair<uint64_t, IntelRule>>
      simhashes;                         // simhash (scanned: within kSimhashDistance bits)
  std::map<std::string, int64_t> kinds;  // acting rules per kind
  size_t size = 0;
};

namespace {

std::string exact_key(const std::string& kind, const std::string& value) {
  return kind + '\0' + value;
}

}  // namespace

void PartnerRules::rebuild(const std::vector<IntelRule>& rules, int64_t version) {
  auto index = std::make_shared<Index>();
  for (const IntelRule& r : rules) {
    if (r.action == Response::none || r.action == Response::allow) continue;
    if (r.kind == "template" || r.kind == "simhash") {
      const std::optional<uint64_t> h = parse_hex64(r.value);
      if (!h) continue;
      if (r.kind == "template")
        index->prefixes.emplace(*h, r);
      else
        index->simhashes.emplace_back(*h, r);
    } else {
      index->exact.emplace(exact_key(r.kind, r.value), r);
    }
    ++index->kinds[r.kind];
    ++index->size;
  }
  std::unique_lock<std::shared_mutex> lock(mutex_);
  index_ = std::move(index);
  version_ = version;
}

bool PartnerRules::refresh(const IntelStore& store) {
  const int64_t v = store.rules_version();
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    if (v == version_) return false;
  }
  rebuild(store.rules(), v);
  return true;
}

std::optional<IntelRule> PartnerRules::match(const PartnerProbe& p, double now) const {
  std::shared_ptr<const Index> index;
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    index = index_;
  }
  if (!index || index->size == 0) return std::nullopt;
  std::optional<IntelRule> best;
  auto consider = [&](const IntelRule& r) {
    if (r.valid_until > 0 && now >= r.valid_until) return;
    if (!best || r.action > best->action ||
        (r.action == best->action && r.confidence > best->confidence))
      best = r;
  };
  auto exact = [&](const char* kind, const std::string& value) {
    if (value.empty()) return;
    auto [a, b] = index->exact.equal_range(exact_key(kind, value));
    for (auto it = a; it != b; ++it) consider(it->second);
  };
  exact("address", p.address);
  exact("user_agent", p.user_agent);
  exact("account", p.account);
  if (p.account_name != p.account) exact("account", p.account_name);
  exact("shape", p.shape);
  if (p.prompt_prefix != 0) {
    auto [a, b] = index->prefixes.equal_range(p.prompt_prefix);
    for (auto it = a; it != b; ++it) consider(it->second);
  }
  if (p.prompt_simhash != 0)
    for (const auto& [h, r] : index->simhashes)
      if (hamming(h, p.prompt_simhash) <= kSimhashDistance) consider(r);
  return best;
}

std::string PartnerRules::matched_text(const IntelRule& r, const PartnerProbe& p) {
  if (r.kind == "address") return cat("address ", p.address);
  if (r.kind == "user_agent") return cat("user agent '", p.user_agent.substr(0, 80), "'");
  if (r.kind == "account")
    return r.value == p.account_name ? cat("account name '", p.account_name, "'")
                                     : cat("account pseudonym ", p.account.substr(0, 12),
                                           "... of key '", p.account_name, "'");
  if (r.kind == "template") return cat("prompt template (opening ", hex64(p.prompt_prefix), ")");
  if (r.kind == "simhash") {
    const std::optional<uint64_t> h = parse_hex64(r.value);
    return cat("prompt SimHash ", hex64(p.prompt_simhash), " (",
               h ? hamming(*h, p.prompt_simhash) : 64, " bits from ", r.value, ")");
  }
  if (r.kind == "shape") return cat("request shape '", p.shape, "'");
  return r.kind;
}

bool PartnerRules::empty() const { return size() == 0; }

bool PartnerRules::has(const std::string& kind) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return index_ && index_->kinds.count(kind) > 0;
}

size_t PartnerRules::size() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return index_ ? index_->size : 0;
}

int64_t PartnerRules::version() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return version_;
}

}  // namespace retort
