// `retort keys`: create, list and revoke the API keys `retort serve` accepts. Keys live in the
// guard database (retort/guard.h) as sha256 only, so a key is shown once, when it is created.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common.h"
#include "retort/error.h"
#include "retort/guard.h"

namespace retort::cli {

namespace keys_cmd {

// --rpm/--tpm/--quota: whole numbers, 0 meaning unlimited.
const CLI::Validator kLimit(
    [](std::string& text) -> std::string {
      try {
        size_t end = 0;
        if (std::stoll(text, &end) >= 0 && end == text.size()) return "";
      } catch (const std::exception&) {
      }
      return "'" + text + "' is not a limit: give a whole number, 0 for unlimited";
    },
    "N>=0");

std::string limit_text(int64_t v) { return v > 0 ? std::to_string(v) : "-"; }

void print_table(const std::vector<ApiKey>& keys) {
  const std::vector<std::string> head = {"name",  "prefix", "created", "rpm",    "tpm",
                                         "quota", "used",   "admin",   "revoked"};
  std::vector<std::vector<std::string>> rows = {head};
  for (const ApiKey& k : keys)
    rows.push_back({k.name, k.prefix, iso_utc(k.created), limit_text(k.limits.rpm),
                    limit_text(k.limits.tpm), limit_text(k.limits.quota_tokens),
                    std::to_string(k.used_tokens), k.admin ? "yes" : "no",
                    k.revoked ? "yes" : "no"});
  std::vector<size_t> width(head.size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      // Text columns (name, prefix, created) align left, numbers right.
      const std::string pad(width[c] - row[c].size(), ' ');
      line += c == 0 ? "" : "  ";
      line += c < 3 ? row[c] + (c + 1 < row.size() ? pad : "") : pad + row[c];
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace keys_cmd

void register_keys(CLI::App& app) {
  struct Args {
    std::string db = "serve.db";
    std::string name;
    KeyLimits limits;
    bool admin = false;
    bool json = false;
  };
  static Args a;
  auto* keys = app.add_subcommand(
      "keys",
      "Manage the API keys `retort serve` accepts (with --db, the same database file).\n"
      "A key is \"rt-\" + 48 hex digits; the database keeps only its sha256, so it is printed\n"
      "once, when created. Limits per key: requests per minute (--rpm), tokens per minute\n"
      "(--tpm, prompt + completion) and tokens over its whole life (--quota); 0 = unlimited.\n"
      "Examples:\n"
      "  KEY=$(retort keys create --name alice --rpm 60 --tpm 40000 --quota 1000000 --db "
      "serve.db)\n"
      "  retort keys list --db serve.db\n"
      "  retort keys revoke --name alice --db serve.db");
  keys->require_subcommand(1);

  auto add_db = [](CLI::App* cmd) {
    cmd->add_option("--db", a.db,
                    "the guard database (SQLite; created by `keys create` when missing)")
        ->capture_default_str();
  };

  auto* create = keys->add_subcommand(
      "create",
      "Create a key and print it on stdout, alone on its line (it is shown only this once).\n"
      "Example: KEY=$(retort keys create --name alice --rpm 60 --tpm 40000 --db serve.db)");
  create->add_option("--name", a.name, "1-64 of A-Z a-z 0-9 . _ -; unique, never reused")
      ->required();
  create->add_option("--rpm", a.limits.rpm, "requests per minute (0 = unlimited)")
      ->check(keys_cmd::kLimit)
      ->capture_default_str();
  create
      ->add_option(
          "--tpm", a.limits.tpm,
          "tokens per minute, prompt + max_tokens * n reserved per request (0 = unlimited)")
      ->check(keys_cmd::kLimit)
      ->capture_default_str();
  create->add_option("--quota", a.limits.quota_tokens, "tokens over the key's life (0 = unlimited)")
      ->check(keys_cmd::kLimit)
      ->capture_default_str();
  create->add_flag("--admin", a.admin, "the key may also manage keys over HTTP");
  add_db(create);
  create->callback([] {
    KeyStore store(std::make_shared<GuardDb>(a.db));
    const auto [key, clear] = store.create(a.name, a.limits, a.admin);
    std::printf("%s\n", clear.c_str());
    std::fflush(stdout);
    std::fprintf(
        stderr,
        "created key '%s' (%s...) in %s; it is shown only this once: store it now, the database "
        "keeps only its sha256\n",
        key.name.c_str(), key.prefix.c_str(), a.db.c_str());
  });

  auto* list = keys->add_subcommand(
      "list",
      "List the keys: name, prefix (first 8 characters of the key), created (UTC), rpm, tpm,\n"
      "quota (- = unlimited), used tokens, admin, revoked. Keys themselves cannot be shown.\n"
      "Example: retort keys list --db serve.db --json");
  list->add_flag(
      "--json", a.json,
      "print a JSON array of {id, name, prefix, created, created_unix, rpm, tpm, quota_tokens,\n"
      "used_tokens, admin, revoked} (0 = unlimited)");
  add_db(list);
  list->callback([] {
    KeyStore store(open_existing_db(a.db, "create a key first: retort keys create --name NAME --db " + a.db));
    const std::vector<ApiKey> all = store.list();
    if (a.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const ApiKey& k : all)
        out.push_back({{"id", k.id},
                       {"name", k.name},
                       {"prefix", k.prefix},
                       {"created", iso_utc(k.created)},
                       {"created_unix", k.created},
                       {"rpm", k.limits.rpm},
                       {"tpm", k.limits.tpm},
                       {"quota_tokens", k.limits.quota_tokens},
                       {"used_tokens", k.used_tokens},
                       {"admin", k.admin},
                       {"revoked", k.revoked}});
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    if (all.empty()) {
      std::printf("no keys in %s; create one: retort keys create --name NAME --db %s\n",
                  a.db.c_str(), a.db.c_str());
      return;
    }
    keys_cmd::print_table(all);
  });

  auto* revoke = keys->add_subcommand(
      "revoke",
      "Revoke a key: `retort serve` refuses it from the next request on (its name stays taken).\n"
      "Example: retort keys revoke --name alice --db serve.db");
  revoke->add_option("--name", a.name, "the key's name (see `retort keys list`)")->required();
  add_db(revoke);
  revoke->callback([] {
    KeyStore store(open_existing_db(a.db, "create a key first: retort keys create --name NAME --db " + a.db));
    const std::optional<ApiKey> key = store.find(a.name);
    if (!key)
      fail("no key named '", a.name, "' in ", a.db, "; `retort keys list --db ", a.db,
           "` shows the names");
    if (key->revoked) {
      std::printf("key '%s' (%s...) was already revoked\n", key->name.c_str(), key->prefix.c_str());
      return;
    }
    store.revoke(a.name);
    std::printf("revoked key '%s' (%s...)\n", key->name.c_str(), key->prefix.c_str());
  });
}

}  // namespace retort::cli
