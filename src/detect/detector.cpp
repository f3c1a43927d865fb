// The detector: keys' activity, their assessments, the key graph and its clusters (retort/detect.h).
#include <algorithm>
#include <numeric>

#include "retort/detect.h"
#include "retort/error.h"

namespace retort {

namespace {

// Union-find over key indices.
struct Components {
  std::vector<size_t> parent;
  explicit Components(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), size_t{0}); }
  size_t root(size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  }
  void join(size_t a, size_t b) { parent[root(a)] = root(b); }
};

double jaccard(const std::set<int64_t>& a, const std::set<int64_t>& b) {
  size_t both = 0;
  for (int64_t x : a) both += b.count(x);
  const size_t any = a.size() + b.size() - both;
  return any ? double(both) / double(any) : 0;
}

std::string hex_prefix(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 8);
}

}  // namespace

std::string Assessment::reason() const {
  std::string out;
  for (const SignalValue& s : signals)
    if (s.fired) out += (out.empty() ? "" : "; ") + s.sentence;
  if (!links.empty()) {
    out += (out.empty() ? "" : "; ");
    out += cat(key_ids.size(), " keys act as one: ");
    for (size_t i = 0; i < links.size() && i < 3; ++i) out += (i ? ", " : "") + links[i];
    if (links.size() > 3) out += cat(" and ", links.size() - 3, " more links");
  }
  return out.empty() ? "no signal fired" : out;
}

nlohmann::json Assessment::to_json() const {
  nlohmann::json sig = nlohmann::json::array();
  for (const SignalValue& s : signals)
    sig.push_back({{"signal", signal_name(s.kind)}, {"value", s.value}, {"threshold", s.threshold}, {"weight", s.weight},
                   {"fired", s.fired}, {"sentence", s.sentence}});
  return {{"name", name},         {"cluster", cluster},   {"keys", key_names}, {"requests", requests},
          {"tokens", tokens},     {"first", first},       {"last", last},      {"score", score},
          {"response", response_name(response)}, {"reason", reason()}, {"signals", sig}, {"links", links}};
}

Detector::Detector(DetectPolicy policy, int64_t reference_chunks) : policy_(std::move(policy)), reference_chunks_(reference_chunks) {
  policy_.check();
}

void Detector::observe(const AuditRow& row) {
  ++observed_;
  now_ = std::max(now_, row.time);
  if (!counts(row)) return;
  activity_[row.key_id].add(row, policy_);
  names_[row.key_id] = row.key_name;
  touched_.insert(row.key_id);
}

bool Detector::counts(const AuditRow& row) {
  // Without a key, or refused before the request was read (blocked): nothing about the key's requests.
  if (row.key_id == 0 || row.error_code == "key_blocked") return false;
  // Listings (models, tokenizers) and key management say nothing about what a key harvests.
  return row.endpoint == "/v1/completions" || row.endpoint == "/v1/chat/completions" || row.endpoint == "/v1/classify";
}

std::vector<Assessment> Detector::take_touched() {
  std::vector<Assessment> out;
  for (int64_t id : touched_) out.push_back(assess({id}, activity_.at(id)));
  touched_.clear();
  return out;
}

Assessment Detector::assess(const std::vector<int64_t>& ids, const Activity& a) const {
  Assessment out;
  out.key_ids = ids;
  for (int64_t id : ids) out.key_names.push_back(names_.at(id));
  out.cluster = ids.size() > 1;
  out.name = out.cluster ? cat("cluster of ", ids.size(), ": ", out.key_names.front(), ", ...") : out.key_names.front();
  out.requests = a.requests;
  out.tokens = a.tokens;
  out.first = a.first;
  out.last = a.last;
  out.signals = a.signals(policy_, reference_chunks_, now_);
  if (a.requests >= policy_.min_requests)
    for (const SignalValue& s : out.signals) out.score += s.fired ? s.weight : 0;
  out.response = policy_.response_for(out.score);
  return out;
}

Assessment Detector::assess_key(int64_t key_id) const {
  auto it = activity_.find(key_id);
  if (it == activity_.end()) fail("the detector has seen no request of key id ", key_id);
  return assess({key_id}, it->second);
}

std::vector<Assessment> Detector::keys() const {
  std::vector<Assessment> out;
  for (const auto& [id, a] : activity_) out.push_back(assess({id}, a));
  std::sort(out.begin(), out.end(), [](const Assessment& x, const Assessment& y) {
    return x.score != y.score ? x.score > y.score : x.key_ids.front() < y.key_ids.front();
  });
  return out;
}

std::vector<Assessment> Detector::clusters() const {
  std::vector<int64_t> ids;
  for (const auto& [id, a] : activity_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  const size_t n = ids.size();
  std::vector<const Activity*> act(n);
  for (size_t i = 0; i < n; ++i) act[i] = &activity_.at(ids[i]);

  // What each key shows that another could share: addresses, user agents, a template.
  std::map<std::string, std::vector<size_t>> by_address, by_agent;
  std::map<uint64_t, std::vector<size_t>> by_template;
  std::map<std::string, std::vector<size_t>> by_shape;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& [c, k] : act[i]->clients) by_address[c].push_back(i);
    for (const auto& [u, k] : act[i]->agents) by_agent[u].push_back(i);
    if (act[i]->top_prefix_share() >= 0.5 && act[i]->requests >= 5) by_template[act[i]->top_prefix()].push_back(i);
    const auto [shape, share] = act[i]->top_shape();
    if (share >= 0.8 && act[i]->requests >= 5) by_shape[shape].push_back(i);
  }
  // Candidate pairs and their shared evidence.
  struct Link {
    double weight = 0;
    std::vector<std::string> why;
  };
  std::map<std::pair<size_t, size_t>, Link> pairs;
  auto share = [&](const std::vector<size_t>& group, double weight, const std::string& what) {
    if (group.size() < 2 || int64_t(group.size()) > policy_.link_max_group || weight <= 0) return;
    for (size_t a = 0; a < group.size(); ++a)
      for (size_t b = a + 1; b < group.size(); ++b) {
        Link& l = pairs[{group[a], group[b]}];
        l.weight += weight;
        l.why.push_back(what);
      }
  };
  for (const auto& [c, g] : by_address) share(g, policy_.link_address, "address " + c);
  for (const auto& [u, g] : by_agent) share(g, policy_.link_user_agent, "user agent '" + u.substr(0, 40) + "'");
  for (const auto& [t, g] : by_template) share(g, policy_.link_template, "prompt template " + hex_prefix(t));
  for (const auto& [t, g] : by_shape) share(g, policy_.link_shape, "request shape '" + t + "'");
  Components comp(n);
  std::vector<std::vector<std::string>> why(n);
  for (auto& [ab, l] : pairs) {
    const auto [a, b] = ab;
    if (policy_.link_timing > 0 && act[a]->buckets().size() >= 3 && act[b]->buckets().size() >= 3 &&
        jaccard(act[a]->buckets(), act[b]->buckets()) >= 0.5) {
      l.weight += policy_.link_timing;
      l.why.push_back("timing");
    }
    if (l.weight + 1e-9 < policy_.link_threshold) continue;
    comp.join(a, b);
    std::string w;
    for (const std::string& s : l.why) w += (w.empty() ? "" : " + ") + s;
    why[a].push_back(names_.at(ids[a]) + "~" + names_.at(ids[b]) + " (" + w + ")");
  }
  std::map<size_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < n; ++i) groups[comp.root(i)].push_back(i);
  std::vector<Assessment> out;
  for (const auto& [root, members] : groups) {
    if (members.size() < 2) continue;
    Activity merged;
    std::vector<int64_t> member_ids;
    std::vector<std::string> links;
    for (size_t i : members) {
      merged.merge(*act[i]);
      member_ids.push_back(ids[i]);
      links.insert(links.end(), why[i].begin(), why[i].end());
    }
    Assessment a = assess(member_ids, merged);
    a.links = std::move(links);
    out.push_back(std::move(a));
  }
  std::sort(out.begin(), out.end(), [](const Assessment& x, const Assessment& y) {
    return x.score != y.score ? x.score > y.score : x.key_ids.front() < y.key_ids.front();
  });
  return out;
}

std::vector<Verdict> Detector::verdicts(const std::vector<Assessment>& keys, const std::vector<Assessment>& clusters) {
  std::unordered_map<int64_t, Verdict> v;
  auto consider = [&](const Assessment& a) {
    for (size_t i = 0; i < a.key_ids.size(); ++i) {
      Verdict& d = v[a.key_ids[i]];
      if (d.from && d.score >= a.score) continue;
      d.key_id = a.key_ids[i];
      d.key_name = a.key_names[i];
      d.score = a.score;
      d.response = a.response;
      d.from = &a;
    }
  };
  for (const Assessment& a : keys) consider(a);
  for (const Assessment& a : clusters) consider(a);
  std::vector<Verdict> out;
  for (auto& [id, d] : v) out.push_back(d);
  std::sort(out.begin(), out.end(), [](const Verdict& a, const Verdict& b) { return a.key_id < b.key_id; });
  return out;
}

}  // namespace retort
