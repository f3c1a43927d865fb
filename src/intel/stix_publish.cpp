// The guard's findings as STIX 2.1 objects in the published collection, and the export bundle
// (retort/stix_publish.h).
#include "retort/stix_publish.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "retort/actions.h"
#include "retort/error.h"
#include "retort/guard.h"
#include "retort/stix.h"
#include "retort/verifications.h"

namespace retort {

namespace {

using nlohmann::json;

constexpr size_t kMostPerKind = 8;  // indicators of one kind, the most used first
constexpr const char* kAtlasId = "AML.T0024.002";

// An action reaches `at` when it is at least as severe (allow is an override, never severe).
bool reaches(Response action, Response at) {
  return action != Response::none && action != Response::allow && int(action) >= int(at);
}

struct Group {
  std::string label;  // as partners see it: a pseudonym unless pseudonymise is off
  std::vector<ActionRow> rows;  // the newest action of each member key
  int64_t confidence = 0;
  double first = 0, last = 0;   // of the members' audit rows (0: none)
  std::string campaign, intrusion_set;
};

struct Seen {
  int64_t count = 0;
  double first = 0, last = 0;
  std::set<std::string> groups;
  bool by_others = false;  // used by a key whose action (if any) did not reach share_at
  void add(double t, const std::string& group) {
    if (count == 0 || t < first) first = t;
    last = std::max(last, t);
    ++count;
    groups.insert(group);
  }
};

class Publisher {
 public:
  Publisher(IntelStore& store, const IntelOptions& o, double now) : store_(store), o_(o), now_(now) {
    tlp_id_ = tlp_marking_id(o.tlp);
    identity_ = retort_id("identity", o.provider);
  }

  // Adds `o` (without created/modified) as a new version when its content changed.
  void put(json o) {
    const std::string id = o["id"].get<std::string>();
    o["spec_version"] = "2.1";
    o["created_by_ref"] = identity_;
    o["object_marking_refs"] = json::array({tlp_id_});
    std::string created = stix_time(now_), modified = created;
    if (const auto prev = store_.latest(kPublishedCollection, id)) {
      json before = prev->object;
      before.erase("created");
      before.erase("modified");
      if (before == o) {
        ++result.objects;
        return;
      }
      created = prev->object.value("created", created);
      const std::string last = prev->object.value("modified", created);
      if (parse_stix_time_us(modified) <= parse_stix_time_us(last))
        modified = stix_time(double(parse_stix_time_us(last) / 1000 + 1) / 1000.0);
    }
    o["created"] = created;
    o["modified"] = modified;
    add(o);
  }

  // Adds an object that carries its own timestamps (markings, the extension-definition).
  void add(const json& o) {
    if (const std::string why = validate_stix_object(o); !why.empty())
      fail("publish made an invalid STIX object ", o.value("id", "?"), ": ", why);
    ++result.objects;
    StoredObject s;
    s.collection = kPublishedCollection;
    s.object = o;
    s.source = "local";
    if (store_.add(s)) ++result.new_versions;
  }

  void run() {
    add(tlp_marking(o_.tlp));
    put(json{{"type", "identity"},
             {"id", identity_},
             {"name", o_.provider},
             {"identity_class", "organization"},
             {"sectors", json::array({"technology"})},
             {"description", "A provider of a model API that shares what its guard (retort) finds about distillation."}});
    json ext = extension_definition(identity_);
    ext["object_marking_refs"] = json::array({tlp_id_});
    add(ext);
    attack_pattern_ = retort_id("attack-pattern", std::string("mitre-atlas/") + kAtlasId);
    put(json{{"type", "attack-pattern"},
             {"id", attack_pattern_},
             {"name", "Extract ML Model"},
             {"description",
              "Adversaries query a model's inference API and train a copy of it on the answers (distillation)."},
             {"external_references", json::array({json{{"source_name", "mitre-atlas"},
                                                        {"external_id", kAtlasId},
                                                        {"url", std::string("https://atlas.mitre.org/techniques/") + kAtlasId}}})}});
    find_groups();
    if (groups_.empty()) return;
    secret_ = o_.group_secret.empty() ? store_.own_secret() : o_.group_secret;
    for (auto& [name, g] : groups_) g.label = o_.pseudonymise ? pseudonym(secret_, name).substr(0, 12) : name;
    read_audit();
    for (auto& [name, g] : groups_) publish_group(g);
    publish_indicators();
    publish_verifications();
  }

  PublishResult result;

 private:
  // Keys whose newest action reached share_at: grouped by cluster. Every other key (no action,
  // or one below share_at) is one whose addresses, agents, openings and shapes are never shared.
  void find_groups() {
    std::map<int64_t, ActionRow> newest;
    for (const ActionRow& r : ActionStore(store_.db()).since(0)) newest[r.key_id] = r;
    for (const auto& [key_id, r] : newest) {
      if (!reaches(r.action, o_.share_at)) continue;
      if (r.source != "policy" && r.source != "operator") {  // a partner's word is not ours to repeat
        partners_.insert(key_id);
        continue;
      }
      const std::string name = r.cluster.empty() ? "key:" + r.key_name : "cluster:" + r.cluster;
      Group& g = groups_[name];
      g.rows.push_back(r);
      const int64_t c = r.source == "operator" ? 100 : std::clamp<int64_t>(std::llround(r.score * 100), 0, 100);
      g.confidence = std::max(g.confidence, c);
      group_of_[key_id] = name;
      key_group_[r.key_name] = name;
    }
  }

  void read_audit() {
    AuditLog audit(store_.db());
    std::map<int64_t, Seen> accounts;
    int64_t after = 0;
    for (;;) {
      const std::vector<AuditRow> rows = audit.since(after, 5000);
      if (rows.empty()) break;
      after = rows.back().id;
      for (const AuditRow& r : rows) {
        if (r.key_id <= 0) continue;
        const auto member = group_of_.find(r.key_id);
        const bool other = member == group_of_.end();
        if (other && partners_.count(r.key_id)) continue;  // acted on by a partner's word: neither side
        std::vector<std::pair<std::string, std::string>> values;
        if (!r.client.empty()) values.emplace_back("address", r.client);
        if (!r.user_agent.empty()) values.emplace_back("user_agent", r.user_agent);
        // What a request asked is only whole in the rows of answered requests (a refusal may come
        // before its body is read), so openings and shapes come from those alone.
        if (r.status > 0 && r.status < 400) {
          if (r.prompt_prefix != 0) values.emplace_back("template", hex64(r.prompt_prefix));
          if (const std::string shape = request_shape(r); !shape.empty()) values.emplace_back("shape", shape);
        }
        for (const auto& kv : values) {
          Seen& s = seen_[kv];
          if (other)
            s.by_others = true;
          else
            s.add(r.time, member->second);
        }
        if (!other) {
          Group& g = groups_[member->second];
          if (g.first == 0 || r.time < g.first) g.first = r.time;
          g.last = std::max(g.last, r.time);
          accounts[r.key_id].add(r.time, member->second);
        }
      }
    }
    // Each member key's account, whatever else it shares.
    for (auto& [name, g] : groups_)
      for (const ActionRow& a : g.rows) {
        Seen s = accounts.count(a.key_id) ? accounts[a.key_id] : Seen{};
        if (s.count == 0) s.first = s.last = a.time;  // acted on before it sent anything
        s.groups = {name};
        seen_[{"account", o_.pseudonymise ? pseudonym(secret_, a.key_name) : a.key_name}] = s;
      }
  }

  void publish_group(Group& g) {
    const std::string who = o_.provider + "/" + g.label;
    g.campaign = retort_id("campaign", who);
    g.intrusion_set = retort_id("intrusion-set", who);
    double first = g.first, last = g.last;
    std::string actions, reasons;
    Response strongest = Response::none;
    for (const ActionRow& a : g.rows) {
      if (first == 0 || a.time < first) first = a.time;
      last = std::max(last, a.time);
      if (int(a.action) > int(strongest)) strongest = a.action;
      if (!a.reason.empty() && reasons.find(a.reason) == std::string::npos) reasons += (reasons.empty() ? "" : " ") + a.reason;
    }
    std::string description = cat(g.rows.size(), " API key", g.rows.size() == 1 ? "" : "s", " at ", o_.provider,
                                  " that the guard answered with '", response_name(strongest), "'.");
    if (!o_.pseudonymise && !reasons.empty()) description += " Why: " + reasons;
    put(json{{"type", "campaign"},
             {"id", g.campaign},
             {"name", "Distillation campaign " + g.label},
             {"description", description},
             {"objective", "copy the behaviour of a served model by training on its answers (distillation)"},
             {"first_seen", stix_time(first)},
             {"last_seen", stix_time(last)},
             {"confidence", g.confidence}});
    put(json{{"type", "intrusion-set"},
             {"id", g.intrusion_set},
             {"name", "Distillation actor " + g.label},
             {"description", "Whoever holds the API keys of campaign " + g.label + " at " + o_.provider + "."},
             {"goals", json::array({"a copy of a served model"})},
             {"first_seen", stix_time(first)},
             {"last_seen", stix_time(last)},
             {"confidence", g.confidence}});
    relationship(g.campaign, "attributed-to", g.intrusion_set, g.confidence);
    relationship(g.campaign, "uses", attack_pattern_, g.confidence);
    relationship(g.intrusion_set, "uses", attack_pattern_, g.confidence);
    ++result.campaigns;
  }

  void relationship(const std::string& source, const std::string& type, const std::string& target, int64_t confidence) {
    put(json{{"type", "relationship"},
             {"id", retort_id("relationship", source + "/" + type + "/" + target)},
             {"relationship_type", type},
             {"source_ref", source},
             {"target_ref", target},
             {"confidence", confidence}});
  }

  void publish_indicators() {
    // Per kind, the values no other key used, the most used first (accounts: all).
    std::map<std::string, std::vector<std::pair<std::pair<std::string, std::string>, const Seen*>>> by_kind;
    for (const auto& [kv, s] : seen_) {
      if (s.by_others || s.groups.empty()) continue;
      if (kv.first == "template" && s.count < 2) continue;  // an opening seen once is no template
      by_kind[kv.first].push_back({kv, &s});
    }
    for (auto& [kind, list] : by_kind) {
      std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.second->count > b.second->count; });
      if (kind != "account" && list.size() > kMostPerKind) list.resize(kMostPerKind);
      for (const auto& [kv, s] : list) publish_indicator(kv.first, kv.second, *s);
    }
  }

  void publish_indicator(const std::string& kind, const std::string& value, const Seen& s) {
    static const std::map<std::string, std::string> kWhat = {
        {"address", "client address"}, {"user_agent", "user agent"}, {"account", "account"},
        {"template", "prompt opening"}, {"shape", "request shape"}};
    const std::string id = retort_id("indicator", o_.provider + "/" + kind + "/" + value);
    int64_t confidence = 0;
    for (const std::string& g : s.groups) confidence = std::max(confidence, groups_[g].confidence);
    const double first = s.first, last = std::max(s.first, s.last);
    put(json{{"type", "indicator"},
             {"id", id},
             {"name", "The " + kWhat.at(kind) + " of a distillation campaign"},
             {"indicator_types", json::array({"malicious-activity"})},
             {"pattern", indicator_pattern(kind, value)},
             {"pattern_type", "stix"},
             {"pattern_version", "2.1"},
             {"valid_from", stix_time(first)},
             {"confidence", confidence}});
    for (const std::string& g : s.groups) relationship(id, "indicates", groups_[g].campaign, confidence);
    json sighting = {{"type", "sighting"},
                     {"id", retort_id("sighting", o_.provider + "/" + id)},
                     {"sighting_of_ref", id},
                     {"where_sighted_refs", json::array({identity_})},
                     {"first_seen", stix_time(first)},
                     {"last_seen", stix_time(last)},
                     {"confidence", confidence}};
    sighting["count"] = s.count;
    put(sighting);
    ++result.indicators;
  }

  void publish_verifications() {
    for (const VerificationRow& v : VerificationStore(store_.db()).recent(1000)) {
      std::set<std::string> campaigns;
      int64_t keys = 0;
      try {
        for (const json& u : json::parse(v.usage)) {
          const auto it = key_group_.find(u.value("key", ""));
          if (it == key_group_.end()) continue;
          campaigns.insert(groups_[it->second].campaign);
          ++keys;
        }
      } catch (const json::exception&) {
        continue;  // a row whose usage is not JSON names no campaign
      }
      if (campaigns.empty()) continue;  // about keys this provider does not publish
      const std::string content = cat(
          "retort guard verify tested the suspect model ", v.suspect, " for this provider's watermark ",
          v.watermark_key, ": p-value ", v.p_value, " over ", v.tokens, " tokens (method: ", v.method, ")",
          v.control_p_value >= 0 ? cat("; the control model gives p-value ", v.control_p_value) : std::string(), ". ",
          keys, " API key", keys == 1 ? "" : "s", " of the campaigns referenced received the marked answers.");
      put(json{{"type", "note"},
               {"id", retort_id("note", o_.provider + "/verification/" + std::to_string(v.id))},
               {"abstract", v.p_value < 1e-6 ? "A model that learned from marked answers" : "A watermark verification"},
               {"content", content},
               {"authors", json::array({o_.provider})},
               {"object_refs", json(std::vector<std::string>(campaigns.begin(), campaigns.end()))}});
    }
  }

  IntelStore& store_;
  const IntelOptions& o_;
  double now_;
  std::string tlp_id_, identity_, attack_pattern_, secret_;
  std::map<std::string, Group> groups_;                 // by group name
  std::map<int64_t, std::string> group_of_;             // key id -> group name
  std::map<std::string, std::string> key_group_;        // key name -> group name
  std::set<int64_t> partners_;  // keys whose newest action reached share_at on a partner's word
  std::map<std::pair<std::string, std::string>, Seen> seen_;  // (kind, value)
};

}  // namespace

PublishResult publish(IntelStore& store, const IntelOptions& options, double now) {
  Publisher p(store, options, now);
  p.run();
  if (p.result.new_versions > 0)
    store.log({0, now, "published", "", kPublishedCollection, "",
               cat(p.result.new_versions, " new object versions (", p.result.campaigns, " campaigns, ",
                   p.result.indicators, " indicators)")});
  return p.result;
}

nlohmann::json export_bundle(IntelStore& store, double since_unix) {
  json objects = json::array();
  ObjectQuery q;
  q.limit = 1000;
  const int64_t since_us = int64_t(std::floor(since_unix * 1e6));
  for (;;) {
    const ObjectPage page = store.objects(kPublishedCollection, q);
    for (const StoredObject& o : page.objects) {
      const bool always = o.type == "identity" || o.type == "marking-definition" || o.type == "extension-definition";
      if (!always && since_unix > 0 && parse_stix_time_us(o.version) < since_us) continue;
      objects.push_back(o.object);
    }
    if (!page.more) break;
    q.after_seq = page.next;
  }
  return json{{"type", "bundle"}, {"id", "bundle--" + stix_uuid4()}, {"objects", objects}};
}

}  // namespace retort
