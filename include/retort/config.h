// Configuration: a schema of keys (name, type, default, help, allowed range), and a
// config filled from defaults, then a TOML file, then --set overrides. Unknown or
// mistyped keys are errors that name the key. The schema of every key retort
// understands is retort/config_schema.h.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace retort {

enum class ValueKind { Int, Float, Bool, String, IntList };
using Value = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>>;

struct ConfigKey {
  std::string name;                  // dotted, e.g. "train.lr"
  ValueKind kind = ValueKind::Int;   // the type a value must have
  Value def;                         // default value
  std::string help;                  // one line for --help and the config reference
  std::optional<double> min;         // inclusive lower bound for numbers / list items
  std::optional<double> max;         // inclusive upper bound
  std::vector<std::string> choices;  // allowed strings (empty = any)
};

class ConfigSchema {
 public:
  ConfigSchema& add(ConfigKey key);
  const ConfigKey* find(const std::string& name) const;
  const std::vector<ConfigKey>& keys() const { return keys_; }
  // The closest known key by edit distance, for "did you mean" hints.
  std::string nearest(const std::string& name) const;

 private:
  std::vector<ConfigKey> keys_;
};

class Config {
 public:
  // defaults <- recipe (TOML text, if given) <- file (if given) <- each "key=value" in
  // `sets`, in order.
  static Config load(const ConfigSchema& schema, const std::string& file,
                     const std::vector<std::string>& sets, const std::string& recipe = "");
  static Config defaults(const ConfigSchema& schema);

  void set(const std::string& name, const std::string& text);  // parses per schema
  void set_value(const std::string& name, Value v);             // checks type/range

  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  const std::vector<int64_t>& get_ints(const std::string& name) const;

  // Resolved config as TOML, grouped by section, with help as comments.
  std::string to_toml() const;
  // A stable digest of the keys under `prefix` (all keys when empty).
  std::string digest(const std::string& prefix = "") const;

 private:
  explicit Config(const ConfigSchema* schema) : schema_(schema) {}
  const Value& get(const std::string& name, ValueKind kind) const;
  const ConfigSchema* schema_;
  std::map<std::string, Value> values_;
};

std::string value_to_string(const Value& v);

}  // namespace retort
