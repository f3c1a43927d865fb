// GET /health, /v1/models, /v1/models/ID and /v1/models/ID/tokenizer.
#include <atomic>
#include <cstdio>
#include <random>

#include "retort/base64.h"
#include "retort/tokenizer.h"
#include "serve/routes.h"

namespace retort::serve {

const ServedModel& served_model(ServeContext& c, Call& call, const json& body, const std::string& kind) {
  call.audit.model = model_of(body);
  const ServedModel& m = c.engine.model(call.audit.model);
  if (m.kind != kind)
    bad_request("model", m.kind == "classifier" ? cat("'", m.id, "' is a classifier; use /v1/classify")
                                                : cat("'", m.id, "' is a language model; use /v1/completions or /v1/chat/completions"));
  return m;
}

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}() * 0x9e3779b97f4a7c15ULL;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%016llx%06llx", prefix, static_cast<unsigned long long>(salt ^ uint64_t(unix_now() * 1e6)),
                static_cast<unsigned long long>(++counter));
  return buf;
}

void add_model_routes(http::Transport& t, ServeContext& c) {
  using Req = const http::Request&;
  using Res = http::Response&;
  // On the event loop itself: answers even when every handler thread is busy.
  t.route(
      "GET", "/health",
      [&c](Req, Res res) {
        auto [active, waiting] = c.chain.load();
        json models = json::array();
        for (const auto& m : c.engine.models()) models.push_back(m->id);
        GuardChain::send_json(res, 200, {{"status", "ok"}, {"models", models}, {"running", active}, {"waiting", waiting},
                                         {"answered", c.chain.answered()}, {"uptime_s", steady_now() - c.started}});
      },
      /*inline_=*/true);
  t.route("GET", "/v1/models", [&c](Req req, Res res) {
    c.chain.handle(req, res, "/v1/models", true, [&c](const CallPtr&, Req, Res res) {
      json data = json::array();
      for (const auto& m : c.engine.models()) data.push_back(m->describe());
      GuardChain::send_json(res, 200, {{"object", "list"}, {"data", data}});
    });
  });
  t.route("GET", R"(/v1/models/([^/]+))", [&c](Req req, Res res) {
    c.chain.handle(req, res, "/v1/models/{model}", true, [&c](const CallPtr& call, Req req, Res res) {
      call->audit.model = req.matches[1];
      GuardChain::send_json(res, 200, c.engine.model(req.matches[1]).describe());
    });
  });
  t.route("GET", R"(/v1/models/([^/]+)/tokenizer)", [&c](Req req, Res res) {
    c.chain.handle(req, res, "/v1/models/{model}/tokenizer", true, [&c](const CallPtr& call, Req req, Res res) {
      call->audit.model = req.matches[1];
      const ServedModel& m = c.engine.model(req.matches[1]);
      if (m.kind != "language_model")
        throw ApiError(404, "invalid_request_error", "no_tokenizer", cat("'", m.id, "' is a classifier: it has no tokenizer"));
      TokenizerFiles f = m.tokenizer->files();
      GuardChain::send_json(res, 200,
                            {{"object", "tokenizer"}, {"model", m.id}, {"kind", m.tokenizer->kind()},
                             {"fingerprint", m.tokenizer->fingerprint()}, {"vocab_size", m.vocab_size},
                             {"files", {{"tokenizer.json", f.json}, {"tokenizer.model", base64_encode(f.model)}}}});
    });
  });
}

}  // namespace retort::serve
