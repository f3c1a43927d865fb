// The routes of `retort serve` (serve-private), one file per family; server.cpp registers each
// family with one line. A route runs its work inside GuardChain::handle, which never throws.
#pragma once
#include "serve/chain.h"
#include "serve/openai_schema.h"
#include "serve/transport.h"

namespace retort::serve {

struct ServeContext {
  Engine& engine;
  GuardChain& chain;
  const ServeOptions& options;
  double started = 0;  // steady seconds
};

using RouteFamily = void (*)(http::Transport&, ServeContext&);

void add_model_routes(http::Transport& t, ServeContext& c);       // /health, /v1/models, tokenizer
void add_completion_routes(http::Transport& t, ServeContext& c);  // /v1/completions, /v1/chat/completions
void add_classify_routes(http::Transport& t, ServeContext& c);    // /v1/classify
void add_admin_routes(http::Transport& t, ServeContext& c);       // /v1/admin/keys
void add_taxii_routes(http::Transport& t, ServeContext& c);       // /taxii2/ (intel.taxii)
void add_dashboard_routes(http::Transport& t, ServeContext& c);   // /dashboard (admin key)

// The body's model, which must be of `kind` (the audit row learns its name first).
const ServedModel& served_model(ServeContext& c, Call& call, const json& body, const std::string& kind);
// "cmpl-" + 22 hex digits, unique within the process and unlikely across processes.
std::string new_id(const char* prefix);

}  // namespace retort::serve
