// `retort intel`: threat intelligence with partner providers (STIX 2.1 over TAXII 2.1).
// export and grant live here; pull, push and partner in cmd_intel_exchange.cpp.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/guard.h"
#include "retort/intel.h"
#include "retort/stix.h"
#include "retort/stix_publish.h"

namespace retort::cli {

namespace {

struct IntelArgs {
  std::string db = "serve.db", since = "0", out, key, collection;
  bool read = false, write = false;
  ConfigArgs config;
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// --since: 0 (everything), a duration back from now (90s, 30m, 24h, 7d) or a STIX/RFC 3339 UTC time.
double since_time(const std::string& text, double now) {
  if (text == "0") return 0;
  if (text.size() >= 2) {
    const char unit = text.back();
    const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    const std::string number = text.substr(0, text.size() - 1);
    if (scale > 0 && number.find_first_not_of("0123456789") == std::string::npos) return now - std::stod(number) * scale;
  }
  try {
    return parse_stix_time(text);
  } catch (const Error&) {
    fail("--since '", text, "' is neither 0, a duration (90s, 30m, 24h, 7d) nor a UTC time (2026-12-05T10:00:00Z)");
  }
}

std::string to_create(const std::string& db) { return "retort serve --db " + db + " makes one"; }

void export_intel(const IntelArgs& a) {
  const double now = now_seconds();
  const double since = since_time(a.since, now);
  if (a.out.empty()) fail("name the bundle to write with --out (e.g. --out bundle.json)");
  const std::filesystem::path out(a.out);
  const std::filesystem::path dir = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(dir)) fail("--out ", a.out, ": the folder '", dir.string(), "' does not exist");
  const Options o = read_options(resolve_config(a.config));
  IntelStore store(open_existing_db(a.db, to_create(a.db)));
  const PublishResult r = publish(store, o.intel, now);
  const nlohmann::json bundle = export_bundle(store, since);
  atomic_write_text(out, bundle.dump(2) + "\n");
  std::fprintf(stderr, "intel export: %lld new versions published (%lld campaigns, %lld indicators); %zu objects in %s\n",
               static_cast<long long>(r.new_versions), static_cast<long long>(r.campaigns),
               static_cast<long long>(r.indicators), bundle["objects"].size(), a.out.c_str());
  std::printf("%s\n", a.out.c_str());
}

void grant(const IntelArgs& a) {
  const IntelCollection* c = find_collection(a.collection);
  if (!c) {
    std::string known;
    for (const IntelCollection& k : intel_collections()) known += cat(known.empty() ? "" : ", ", k.alias, " (", k.id, ")");
    fail("no intel collection '", a.collection, "'; there are ", known);
  }
  auto db = open_existing_db(a.db, to_create(a.db));
  KeyStore keys(db);
  const std::optional<ApiKey> key = keys.find(a.key);
  if (!key) fail("no API key named '", a.key, "' in ", a.db, " (retort keys list --db ", a.db, " shows them)");
  IntelStore(db).grant(c->id, key->name, a.read, a.write);
  std::printf("%s: %s%s%s on %s (%s)\n", key->name.c_str(), a.read ? "read" : "", a.read && a.write ? " + " : "",
              a.write ? "write" : (a.read ? "" : "no rights"), c->alias.c_str(), c->id.c_str());
  if (key->admin) std::fprintf(stderr, "note: %s is an admin key, which may read and write every collection anyway\n", key->name.c_str());
}

}  // namespace

void register_intel(CLI::App& app) {
  static IntelArgs a;
  CLI::App* intel = app.add_subcommand(
      "intel",
      "Share what the guard finds with partner providers: STIX 2.1 objects (identity, campaigns,\n"
      "indicators, sightings, TLP markings) over TAXII 2.1. Two collections: " + std::string(kPublishedCollection) +
          " (what this\nprovider publishes) and " + kInboxCollection + " (an inbox partners may write to).");
  intel->require_subcommand(1);

  CLI::App* ex = intel->add_subcommand(
      "export",
      "Publish the guard's findings, then write them as one STIX 2.1 bundle.\n"
      "Keys whose newest action (from the detector or `retort guard act`) reached intel.share_at\n"
      "become campaigns; what only they used (addresses, user agents, prompt openings, request\n"
      "shapes) becomes indicators; accounts are pseudonymised unless intel.pseudonymise=false.\n"
      "Never a prompt or an answer. Examples:\n"
      "  retort intel export --db serve.db --out bundle.json\n"
      "  retort intel export --db serve.db --since 24h --set intel.provider=lab-a --set intel.tlp=green --out b.json\n"
      "  node ../shared/conformance/validate-stix.mjs bundle.json    # the OASIS schemas agree");
  add_db_option(ex, a.db);
  add_config_args(ex, a.config);
  ex->add_option("--since", a.since,
                 "only objects changed since then: 0 (all), 90s, 30m, 24h, 7d, or 2026-12-05T10:00:00Z\n"
                 "(the identity, markings and extension-definition they name always come along)")
      ->capture_default_str();
  ex->add_option("--out", a.out, "the bundle to write (atomically; its folder must exist)")->required();
  ex->callback([] { export_intel(a); });

  CLI::App* gr = intel->add_subcommand(
      "grant",
      "Let an API key read or write an intel collection over TAXII (/taxii2/). A grant replaces the\n"
      "key's last one on that collection: name neither --read nor --write to take its rights away.\n"
      "Admin keys may do everything without one. Examples:\n"
      "  retort keys create --db serve.db --name lab-b        # the key partner lab-b pulls with\n"
      "  retort intel grant --db serve.db --key lab-b --collection distillation-campaigns --read\n"
      "  retort intel grant --db serve.db --key lab-b --collection partner-reports --write");
  add_db_option(gr, a.db);
  gr->add_option("--key", a.key, "the API key's name (retort keys list shows them)")->required();
  gr->add_option("--collection", a.collection, "the collection's id or alias (distillation-campaigns | partner-reports)")
      ->required();
  gr->add_flag("--read", a.read, "may read its objects (GET objects, manifest, versions)");
  gr->add_flag("--write", a.write, "may add objects (POST an envelope)");
  gr->callback([] { grant(a); });

  register_intel_exchange(*intel);
}

}  // namespace retort::cli
