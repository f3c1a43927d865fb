// Reading a model's options from its spec (model.json): shared by the registry, which builds
// models, and the FLOP counts, which must read the same keys with the same defaults.
#pragma once
#include <nlohmann/json.hpp>

#include "gpt.h"
#include "tree.h"
#include "retort/error.h"

namespace retort {

// The option `key` of `o`: missing -> `def`, present with the wrong type -> Error naming it.
template <typename T>
T model_option(const nlohmann::json& o, const char* key, T def) {
  if (!o.contains(key)) return def;
  try {
    return o.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("model option '", key, "' has the wrong type: ", o.at(key).dump());
  }
}

// A gpt's options from its spec, every key with GptOptions' default (not yet resolved:
// resolve_gpt_options fills n_kv_heads and d_ff and names a bad value).
GptOptions gpt_options_from(const nlohmann::json& o);
// A tree's options from its spec (in_features = in_channels * height * width); TreeImpl checks them.
TreeOptions tree_options_from(const nlohmann::json& o);

}  // namespace retort
