// Config loading: defaults, TOML file, --set overrides, with strict checking.
#include "retort/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <sstream>
#include <toml++/toml.h>

#include "retort/error.h"
#include "retort/hash.h"

namespace retort {

namespace {

const char* kind_name(ValueKind k) {
  switch (k) {
    case ValueKind::Int: return "an integer";
    case ValueKind::Float: return "a number";
    case ValueKind::Bool: return "true or false";
    case ValueKind::String: return "a string";
    case ValueKind::IntList: return "a list of integers";
  }
  return "?";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_float(const std::string& s, double& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

std::string trim(std::string s) {
  auto ws = [](unsigned char c) { return std::isspace(c); };
  while (!s.empty() && ws(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i])) ++i;
  return s.substr(i);
}

void flatten(const toml::table& t, const std::string& prefix,
             std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (auto&& [k, v] : t) {
    std::string name = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (v.is_table())
      flatten(*v.as_table(), name, out);
    else
      out.emplace_back(name, &v);
  }
}

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_quoted(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Whether text is well-formed UTF-8, which every TOML file must be.
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    const unsigned char c1 = n > 1 ? s[i + 1] : 0;
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
      return false;  // overlong, a surrogate, above U+10FFFF
    i += n;
  }
  return true;
}

}  // namespace

std::string value_to_string(const Value& v) {
  std::ostringstream os;
  std::visit(
      [&](auto&& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          os << (x ? "true" : "false");
        } else if constexpr (std::is_same_v<T, std::string>) {
          os << toml_quoted(x);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          os << '[';
          for (size_t i = 0; i < x.size(); ++i) os << (i ? ", " : "") << x[i];
          os << ']';
        } else if constexpr (std::is_same_v<T, double>) {
          // 10 significant digits, or as many more as it takes to read back the same number.
          std::string s;
          for (int digits = 10; digits <= 17; ++digits) {
            std::ostringstream d;
            d.precision(digits);
            d << x;
            s = d.str();
            if (std::strtod(s.c_str(), nullptr) == x) break;
          }
          if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
          os << s;
        } else {
          os << x;
        }
      },
      v);
  return os.str();
}

// ---- schema -----------------------------------------------------------------

ConfigSchema& ConfigSchema::add(ConfigKey key) {
  if (find(key.name)) fail("config key registered twice: ", key.name);
  keys_.push_back(std::move(key));
  return *this;
}

const ConfigKey* ConfigSchema::find(const std::string& name) const {
  for (const auto& k : keys_)
    if (k.name == name) return &k;
  return nullptr;
}

std::string ConfigSchema::nearest(const std::string& name) const {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& k : keys_) {
    size_t d = edit_distance(name, k.name);
    if (d < best_d) best_d = d, best = k.name;
  }
  return best_d <= std::max<size_t>(3, name.size() / 3) ? best : "";
}

// ---- config -----------------------------------------------------------------

Config Config::defaults(const ConfigSchema& schema) {
  Config c(&schema);
  for (const auto& k : schema.keys()) c.values_[k.name] = k.def;
  return c;
}

static const ConfigKey& known_key(const ConfigSchema& schema, const std::string& name) {
  const ConfigKey* key = schema.find(name);
  if (!key) {
    std::string hint = schema.nearest(name);
    fail("unknown config key '", name, "'", hint.empty() ? "" : cat("; did you mean '", hint, "'?"),
         " (see `retort config` for every key)");
  }
  return *key;
}

void Config::set_value(const std::string& name, Value v) {
  const ConfigKey& key = known_key(*schema_, name);
  if (key.kind == ValueKind::Float && std::holds_alternative<int64_t>(v))
    v = static_cast<double>(std::get<int64_t>(v));
  bool ok = (key.kind == ValueKind::Int && std::holds_alternative<int64_t>(v)) ||
            (key.kind == ValueKind::Float && std::holds_alternative<double>(v)) ||
            (key.kind == ValueKind::Bool && std::holds_alternative<bool>(v)) ||
            (key.kind == ValueKind::String && std::holds_alternative<std::string>(v)) ||
            (key.kind == ValueKind::IntList && std::holds_alternative<std::vector<int64_t>>(v));
  if (!ok) fail("config key '", name, "' must be ", kind_name(key.kind), ", got ", value_to_string(v));
  auto check_range = [&](double x) {
    if ((key.min && x < *key.min) || (key.max && x > *key.max)) {
      auto bound = [](double b) { return cat(std::setprecision(12), b); };
      std::string range = key.max ? cat("between ", bound(*key.min), " and ", bound(*key.max)) : cat(">= ", bound(*key.min));
      if (!key.min) range = cat("<= ", bound(*key.max));
      fail("config key '", name, "' must be ", range, ", got ", value_to_string(v));
    }
  };
  if (auto* i = std::get_if<int64_t>(&v)) check_range(static_cast<double>(*i));
  if (auto* d = std::get_if<double>(&v)) {
    // TOML's nan and inf would pass any range; the resolved config.toml could not hold them either.
    if (!std::isfinite(*d)) fail("config key '", name, "' must be a finite number, got ", value_to_string(v));
    check_range(*d);
  }
  if (auto* l = std::get_if<std::vector<int64_t>>(&v))
    for (auto x : *l) check_range(static_cast<double>(x));
  if (auto* s = std::get_if<std::string>(&v); s && !valid_utf8(*s))
    fail("config key '", name, "' must be UTF-8 text (the resolved config.toml holds it), got ", s->size(),
         " bytes that are not");
  if (auto* s = std::get_if<std::string>(&v); s && !key.choices.empty()) {
    if (std::find(key.choices.begin(), key.choices.end(), *s) == key.choices.end()) {
      std::string list;
      for (const auto& c : key.choices) list += (list.empty() ? "" : ", ") + c;
      fail("config key '", name, "' must be one of {", list, "}, got \"", *s, "\"");
    }
  }
  values_[name] = std::move(v);
}

void Config::set(const std::string& name, const std::string& raw) {
  const ConfigKey& key = known_key(*schema_, name);
  std::string text = trim(raw);
  auto bad = [&]() { fail("config key '", name, "' must be ", kind_name(key.kind), ", got '", raw, "'"); };
  switch (key.kind) {
    case ValueKind::Int: {
      int64_t v;
      if (!parse_int(text, v)) bad();
      return set_value(name, v);
    }
    case ValueKind::Float: {
      double v;
      if (!parse_float(text, v)) bad();
      return set_value(name, v);
    }
    case ValueKind::Bool:
      if (text == "true" || text == "1") return set_value(name, true);
      if (text == "false" || text == "0") return set_value(name, false);
      bad();
      return;
    case ValueKind::String:
      if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
      return set_value(name, text);
    case ValueKind::IntList: {
      if (!text.empty() && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
      std::vector<int64_t> out;
      std::stringstream ss(text);
      std::string item;
      while (std::getline(ss, item, ',')) {
        int64_t v;
        if (!parse_int(trim(item), v)) bad();
        out.push_back(v);
      }
      return set_value(name, out);
    }
  }
}

namespace {

// Applies every key of a parsed TOML table to `c`; `origin` names where it came from.
void apply_table(Config& c, const ConfigSchema& schema, const toml::table& table, const std::string& origin) {
  std::vector<std::pair<std::string, const toml::node*>> items;
  flatten(table, "", items);
  for (const auto& [name, node] : items) {
    known_key(schema, name);
    try {
      if (auto i = node->value_exact<int64_t>()) c.set_value(name, *i);
      else if (auto d = node->value_exact<double>()) c.set_value(name, *d);
      else if (auto b = node->value_exact<bool>()) c.set_value(name, *b);
      else if (auto s = node->value_exact<std::string>()) c.set_value(name, *s);
      else if (const toml::array* a = node->as_array()) {
        std::vector<int64_t> list;
        for (const auto& el : *a) {
          auto i = el.value_exact<int64_t>();
          if (!i) fail("config key '", name, "' must be a list of integers");
          list.push_back(*i);
        }
        c.set_value(name, list);
      } else {
        fail("config key '", name, "' has a value of an unsupported type");
      }
    } catch (const Error& e) {
      fail(e.what(), " (in ", origin, ")");
    }
  }
}

}  // namespace

Config Config::load(const ConfigSchema& schema, const std::string& file, const std::vector<std::string>& sets,
                    const std::string& recipe) {
  Config c = defaults(schema);
  if (!recipe.empty()) {
    try {
      apply_table(c, schema, toml::parse(recipe), "the built-in recipe");
    } catch (const toml::parse_error& e) {
      fail("built-in recipe line ", e.source().begin.line, ": ", e.description());
    }
  }
  if (!file.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(file);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      if (e.description().find("File could not be opened") != std::string_view::npos)
        fail("config file '", file, "' cannot be opened");
      fail("config file '", file, "' line ", where.line, ", column ", where.column, ": ", e.description());
    }
    apply_table(c, schema, table, file);
  }
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) fail("--set expects key=value, got '", s, "'");
    c.set(trim(s.substr(0, eq)), s.substr(eq + 1));
  }
  return c;
}

const Value& Config::get(const std::string& name, ValueKind kind) const {
  const ConfigKey* key = schema_->find(name);
  if (!key) fail("internal: config key '", name, "' is not in the schema");
  if (key->kind != kind) fail("internal: config key '", name, "' read as ", kind_name(kind));
  return values_.at(name);
}

int64_t Config::get_int(const std::string& n) const { return std::get<int64_t>(get(n, ValueKind::Int)); }
double Config::get_float(const std::string& n) const { return std::get<double>(get(n, ValueKind::Float)); }
bool Config::get_bool(const std::string& n) const { return std::get<bool>(get(n, ValueKind::Bool)); }
const std::string& Config::get_string(const std::string& n) const {
  return std::get<std::string>(get(n, ValueKind::String));
}
const std::vector<int64_t>& Config::get_ints(const std::string& n) const {
  return std::get<std::vector<int64_t>>(get(n, ValueKind::IntList));
}

std::string Config::to_toml() const {
  // Group keys by their section (everything before the last dot).
  std::map<std::string, std::vector<const ConfigKey*>> sections;
  for (const auto& k : schema_->keys()) {
    auto dot = k.name.rfind('.');
    sections[dot == std::string::npos ? "" : k.name.substr(0, dot)].push_back(&k);
  }
  std::ostringstream os;
  os << "# resolved retort configuration (defaults <- config file <- --set)\n";
  for (const auto& [section, keys] : sections) {
    os << "\n";
    if (!section.empty()) os << "[" << section << "]\n";
    for (const auto* k : keys) {
      std::string leaf = k->name.substr(section.empty() ? 0 : section.size() + 1);
      os << leaf << " = " << value_to_string(values_.at(k->name)) << "  # " << k->help << "\n";
    }
  }
  return os.str();
}

std::string Config::digest(const std::string& prefix) const {
  Hasher h;
  for (const auto& [name, v] : values_) {
    if (!prefix.empty() && name.rfind(prefix, 0) != 0) continue;
    h.update(name);
    h.update(value_to_string(v));
  }
  return h.hex();
}

}  // namespace retort
