// Fuzz target: configuration files (src/core/config.cpp) against retort's real schema: a TOML
// file, then (split by fuzz::kPartSeparator) --set arguments, one per line. Accepted: every key
// holds a value of its kind inside its range and choices, and the resolved TOML that a run folder
// keeps (to_toml) loads back to the same configuration.
#include <algorithm>
#include <cmath>
#include <optional>

#include "fuzz_support.h"
#include "retort/config_schema.h"
#include "retort/error.h"

namespace {

void check_ranges(const retort::Config& c, const retort::ConfigSchema& schema) {
  using retort::ValueKind;
  auto in_range = [](const retort::ConfigKey& k, double x) {
    return std::isfinite(x) && !(k.min && x < *k.min) && !(k.max && x > *k.max);
  };
  for (const retort::ConfigKey& k : schema.keys()) {
    switch (k.kind) {
      case ValueKind::Int:
        FUZZ_CHECK(in_range(k, static_cast<double>(c.get_int(k.name))));
        break;
      case ValueKind::Float:
        FUZZ_CHECK(in_range(k, c.get_float(k.name)));
        break;
      case ValueKind::Bool:
        c.get_bool(k.name);
        break;
      case ValueKind::String:
        if (!k.choices.empty())
          FUZZ_CHECK(std::find(k.choices.begin(), k.choices.end(), c.get_string(k.name)) !=
                     k.choices.end());
        break;
      case ValueKind::IntList:
        for (int64_t x : c.get_ints(k.name)) FUZZ_CHECK(in_range(k, static_cast<double>(x)));
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace retort;
  const ConfigSchema& schema = retort_schema();
  std::vector<std::string_view> parts = fuzz::split_parts(fuzz::as_text(data, size));
  const fuzz::fs::path path = fuzz::write_file(fuzz::scratch_dir() / "config.toml", parts[0]);
  std::vector<std::string> sets;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view rest = parts[i];
    while (!rest.empty()) {
      size_t end = std::min(rest.find('\n'), rest.size());
      sets.emplace_back(rest.substr(0, end));
      rest.remove_prefix(std::min(end + 1, rest.size()));
    }
  }

  std::optional<Config> config;
  try {
    config = Config::load(schema, path.string(), sets);
  } catch (const Error&) {
    return 0;
  }
  check_ranges(*config, schema);
  const std::string resolved = config->to_toml();
  try {
    Config again = Config::load(schema, "", {}, resolved);
    FUZZ_CHECK(again.digest() == config->digest());
  } catch (const Error& e) {
    std::fprintf(stderr, "the resolved TOML does not load back: %s\n%s\n", e.what(),
                 resolved.c_str());
    std::abort();
  }
  return 0;
}
