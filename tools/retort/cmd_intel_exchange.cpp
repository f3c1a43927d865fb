// `retort intel pull | push | partner`: this provider's side of a TAXII 2.1 exchange with its
// partners (retort/taxii_client.h): pull a partner's collection into the inbox (its indicators
// become guard rules, retort/partner_rules.h), push the published collection, and the partners
// `retort serve --set intel.pull=true` pulls on its own. Tokens come from environment variables
// and are never printed.
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common.h"
#include "retort/error.h"
#include "retort/guard.h"
#include "retort/intel.h"
#include "retort/taxii_client.h"

namespace retort::cli {

namespace {

struct ExchangeArgs {
  std::string db = "serve.db";
  ConfigArgs config;
  std::string name, url, collection, partner, token_env = "RETORT_INTEL_TOKEN";
  bool token_env_given = false, json = false;
  int64_t page_size = 100, batch = 100;
  double timeout = 30;
};

std::string no_db(const std::string& db) {
  return "no guard database " + db + " (retort serve --db makes one)";
}

// The token in `var`; "" when unset (an Error when the user named the variable: a typo would
// otherwise send no credentials at all).
std::string token_from(const ExchangeArgs& a) {
  const char* t = std::getenv(a.token_env.c_str());
  if ((!t || !*t) && a.token_env_given)
    fail("--token-env ", a.token_env,
         ": that environment variable is not set (export it with the partner's key first)");
  return t ? t : "";
}

// A partner's name when none is given: the host (and port) of its URL.
std::string host_of(const std::string& url) {
  const size_t s = url.find("://");
  const std::string rest = s == std::string::npos ? url : url.substr(s + 3);
  return rest.substr(0, rest.find('/'));
}

void partner_add(const ExchangeArgs& a) {
  IntelStore store(open_existing_db(a.db, no_db(a.db)));
  if (a.url.rfind("http://", 0) != 0 && a.url.rfind("https://", 0) != 0)
    fail("--url '", a.url,
         "' must be the partner's TAXII API root, e.g. http://partner:8080/taxii2/api1/");
  IntelStore::Partner p;
  p.name = a.name;
  p.url = a.url;
  p.collection = a.collection;
  p.token = token_from(a);
  store.add_partner(p);
  std::printf("partner %s: %s collection %s (token from $%s: %s)\n", p.name.c_str(), p.url.c_str(),
              p.collection.c_str(), a.token_env.c_str(),
              p.token.empty() ? "not set, requests go without one" : "set");
}

void partner_list(const ExchangeArgs& a) {
  IntelStore store(open_existing_db(a.db, no_db(a.db)));
  const auto partners = store.partners();
  if (partners.empty())
    std::printf("no partners in %s (retort intel partner add names one)\n", a.db.c_str());
  for (const IntelStore::Partner& p : partners)
    std::printf("%-16s %s  collection %s  token %s  added %s\n", p.name.c_str(), p.url.c_str(),
                p.collection.c_str(), p.token.empty() ? "none" : "set",
                iso_utc(int64_t(p.added)).c_str());
}

void partner_rules(const ExchangeArgs& a) {
  IntelStore store(open_existing_db(a.db, no_db(a.db)));
  const auto rules = store.rules();
  if (rules.empty())
    std::printf("no partner rules in %s (retort intel pull makes them from partners' indicators)\n",
                a.db.c_str());
  for (const IntelRule& r : rules)
    std::printf("%-8s %-10s %-40s from %s, confidence %lld, TLP %s, %s\n", response_name(r.action),
                r.kind.c_str(), r.value.substr(0, 40).c_str(), r.source.c_str(),
                static_cast<long long>(r.confidence), r.tlp.empty() ? "none" : r.tlp.c_str(),
                r.indicator.c_str());
}

void pull(const ExchangeArgs& a) {
  IntelStore store(open_existing_db(a.db, no_db(a.db)));
  const IntelOptions o = read_options(resolve_config(a.config)).intel;
  TaxiiPeer peer;
  if (!a.partner.empty()) {
    if (!a.url.empty()) fail("pull: name either --partner or --from, not both");
    std::string known;
    for (const IntelStore::Partner& p : store.partners()) {
      if (p.name == a.partner)
        peer.name = p.name, peer.url = p.url, peer.collection = p.collection, peer.token = p.token;
      known += (known.empty() ? "" : ", ") + p.name;
    }
    if (peer.name.empty())
      fail("no partner named '", a.partner, "' in ", a.db,
           known.empty() ? " (none yet: retort intel partner add)" : " (known: " + known + ")");
    if (a.token_env_given) peer.token = token_from(a);
  } else {
    if (a.url.empty() || a.collection.empty())
      fail("pull: name --partner NAME, or --from URL with --collection C");
    peer.name = a.name.empty() ? host_of(a.url) : a.name;
    peer.url = a.url;
    peer.collection = a.collection;
    peer.token = token_from(a);
  }
  peer.page_size = a.page_size;
  peer.timeout = a.timeout;
  const PullResult r = taxii_pull(store, peer, o, [](const std::string& line) {
    std::fprintf(stderr, "intel pull: %s\n", line.c_str());
  });
  if (a.json) {
    nlohmann::json j = {{"partner", peer.name},   {"collection", r.collection_id},
                        {"pages", r.pages},       {"received", r.received},
                        {"stored", r.stored},     {"duplicates", r.duplicates},
                        {"rejected", r.rejected}, {"indicators", r.indicators},
                        {"rules", r.rules},       {"cursor", r.cursor}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf(
      "pulled from %s (%s collection %s): %lld pages, %lld objects received, %lld stored, %lld "
      "already held, "
      "%lld rejected; %lld indicators, %lld rules written; next pull from %s\n",
      peer.name.c_str(), peer.url.c_str(), r.collection_id.c_str(), static_cast<long long>(r.pages),
      static_cast<long long>(r.received), static_cast<long long>(r.stored),
      static_cast<long long>(r.duplicates), static_cast<long long>(r.rejected),
      static_cast<long long>(r.indicators), static_cast<long long>(r.rules),
      r.cursor.empty() ? "the start" : r.cursor.c_str());
}

void push(const ExchangeArgs& a) {
  IntelStore store(open_existing_db(a.db, no_db(a.db)));
  TaxiiPeer peer;
  peer.name = a.name.empty() ? host_of(a.url) : a.name;
  peer.url = a.url;
  peer.collection = a.collection;
  peer.token = token_from(a);
  peer.timeout = a.timeout;
  const PushResult r = taxii_push(store, peer, a.batch, [](const std::string& line) {
    std::fprintf(stderr, "intel push: %s\n", line.c_str());
  });
  if (r.objects == 0) {
    std::printf(
        "nothing to push: the published collection of %s is empty (retort serve --set "
        "intel.taxii=true publishes)\n",
        a.db.c_str());
    return;
  }
  std::printf(
      "pushed %lld objects in %lld envelopes to %s (collection %s): %lld accepted, %lld refused, "
      "%lld pending\n",
      static_cast<long long>(r.objects), static_cast<long long>(r.envelopes), peer.name.c_str(),
      r.collection_id.c_str(), static_cast<long long>(r.success), static_cast<long long>(r.failure),
      static_cast<long long>(r.pending));
  for (const std::string& f : r.failures) std::printf("  refused: %s\n", f.c_str());
}

}  // namespace

void register_intel_exchange(CLI::App& intel) {
  static ExchangeArgs a;
  auto token_option = [](CLI::App* cmd) {
    cmd->add_option("--token-env", a.token_env,
                    "environment variable holding the partner's API key (never printed)")
        ->capture_default_str()
        ->each([](const std::string&) { a.token_env_given = true; });
  };

  auto* partner = intel.add_subcommand(
      "partner",
      "Partners `retort serve --set intel.pull=true` pulls every intel.pull_interval seconds.\n"
      "Examples:\n"
      "  export RETORT_INTEL_TOKEN=sk-...   # a key the partner made for you (retort keys create "
      "at their end)\n"
      "  retort intel partner add --db serve.db --name labB --url http://labB:8080/taxii2/api1/ "
      "\\\n"
      "      --collection distillation-campaigns\n"
      "  retort intel partner list --db serve.db\n"
      "  retort intel partner rules --db serve.db   # the guard rules partners' indicators made");
  partner->require_subcommand(1);
  auto* add = partner->add_subcommand(
      "add", "Add (or replace) a partner: its TAXII API root, collection and token.");
  add_db_option(add, a.db);
  add->add_option("--name", a.name, "the partner's name (the source of what is pulled from it)")
      ->required();
  add->add_option("--url", a.url, "its TAXII 2.1 API root, e.g. http://labB:8080/taxii2/api1/")
      ->required();
  add->add_option("--collection", a.collection, "the collection's id, alias or title")->required();
  token_option(add);
  add->callback([] { partner_add(a); });
  auto* list =
      partner->add_subcommand("list", "List the partners (tokens are shown as set or none).");
  add_db_option(list, a.db);
  list->callback([] { partner_list(a); });
  auto* rules = partner->add_subcommand(
      "rules",
      "List the guard rules made from partners' indicators (action none: stored, not acted on).");
  add_db_option(rules, a.db);
  rules->callback([] { partner_rules(a); });

  auto* pl = intel.add_subcommand(
      "pull",
      "Pull a partner's TAXII collection into this provider's inbox (partner-reports), from where "
      "the last pull\n"
      "stopped: every object is validated (STIX 2.1; a failing one is skipped, logged with its "
      "reason), stored\n"
      "with the partner's name as its source, and the partner's indicators become guard rules: a "
      "request that\n"
      "matches one (address, user agent, account pseudonym, prompt template or SimHash, request "
      "shape) earns\n"
      "intel.act.<kind> (throttle, block, ...) if the indicator's confidence reaches "
      "intel.min_confidence.\n"
      "A running `retort serve` on the same --db enforces new rules within a second. Killed "
      "mid-way, the next\n"
      "pull resumes from the last page stored. An answer that is not a TAXII envelope changes "
      "nothing.\n"
      "Examples:\n"
      "  retort intel pull --db serve.db --partner labB\n"
      "  RETORT_INTEL_TOKEN=sk-... retort intel pull --db serve.db --from "
      "https://labB/taxii2/api1/ \\\n"
      "      --collection distillation-campaigns --set intel.min_confidence=70");
  add_db_option(pl, a.db);
  add_config_args(pl, a.config);
  pl->add_option("--partner", a.partner, "a partner of `retort intel partner add`");
  pl->add_option("--from", a.url, "or a TAXII API root to pull from (with --collection)");
  pl->add_option("--collection", a.collection, "the collection's id, alias or title (with --from)");
  pl->add_option("--name", a.name, "the source name of what --from gives (default: its host:port)");
  pl->add_option("--page-size", a.page_size, "objects asked for per page")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  pl->add_option("--timeout", a.timeout, "seconds per HTTP request")->capture_default_str();
  pl->add_flag("--json", a.json, "print the result as one JSON object");
  token_option(pl);
  pl->callback([] { pull(a); });

  auto* ps = intel.add_subcommand(
      "push",
      "Send the newest version of every object this provider published (distillation-campaigns, "
      "filled by\n"
      "`retort serve --set intel.taxii=true`) to a partner's collection, in envelopes of --batch "
      "objects, and\n"
      "wait for each status resource. The partner must have given your key write rights there.\n"
      "Example:\n"
      "  RETORT_INTEL_TOKEN=sk-... retort intel push --db serve.db --to "
      "http://labB:8080/taxii2/api1/ \\\n"
      "      --collection partner-reports");
  add_db_option(ps, a.db);
  ps->add_option("--to", a.url, "the partner's TAXII API root")->required();
  ps->add_option("--collection", a.collection, "the partner collection's id, alias or title")
      ->required();
  ps->add_option("--name", a.name, "the partner's name in the log (default: its host:port)");
  ps->add_option("--batch", a.batch, "objects per envelope")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  ps->add_option("--timeout", a.timeout, "seconds per HTTP request (and to wait for a status)")
      ->capture_default_str();
  token_option(ps);
  ps->callback([] { push(a); });
}

}  // namespace retort::cli
