// The HTTP transport of `retort serve` (retort/serve.h): routes, server-sent events, the
// bounded admission queue, and the guard chain auth -> parse -> limits -> model -> settle ->
// audit around every request. Handlers never throw: failures become OpenAI error objects.
#include <c10/util/Exception.h>
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <optional>
#include <random>

#include "openai_schema.h"
#include "retort/base64.h"
#include "retort/guard.h"
#include "retort/hash.h"
#include "retort/serve.h"
#include "retort/tokenizer.h"

namespace retort {

using nlohmann::json;
using namespace serve;

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
double steady_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// At most `workers` model executions at once and `queue` requests waiting for one; a request
// that finds the queue full is refused at once (503), one that waits too long too.
class Admission {
 public:
  Admission(int64_t workers, int64_t queue) : workers_(workers), queue_(queue) {}
  bool enter(double timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (active_ >= workers_ && waiting_ >= queue_) return false;
    ++waiting_;
    bool ok = cv_.wait_for(lock, std::chrono::duration<double>(timeout), [&] { return active_ < workers_; });
    --waiting_;
    if (ok) ++active_;
    return ok;
  }
  void leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    --active_;
    cv_.notify_one();
  }
  std::pair<int64_t, int64_t> load() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {active_, waiting_};
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int64_t workers_, queue_, active_ = 0, waiting_ = 0;
};

// One request on its way through the chain; shared with a streaming body that outlives the handler.
struct Call {
  AuditRow audit;
  std::optional<ApiKey> key;
  Reservation reservation;
  HeaderList headers;  // x-ratelimit-*
  double start = 0;
  bool settled = false, recorded = false, streaming = false, admitted = false;
};

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}() * 0x9e3779b97f4a7c15ULL;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%016llx%06llx", prefix, static_cast<unsigned long long>(salt ^ uint64_t(unix_now() * 1e6)),
                static_cast<unsigned long long>(++counter));
  return buf;
}

std::string bearer_of(const httplib::Request& req) {
  std::string h = req.get_header_value("Authorization");
  const std::string p = "Bearer ";
  if (h.size() > p.size() && strncasecmp(h.c_str(), p.c_str(), p.size()) == 0) return h.substr(p.size());
  return "";
}

}  // namespace

struct Server::Impl {
  std::shared_ptr<Engine> engine;
  ServeOptions o;
  httplib::Server http;
  std::shared_ptr<GuardDb> db;
  KeyStore keys;
  RateLimiter limiter;
  AuditLog audit;
  Admission admission;
  double started = steady_now();
  std::atomic<int64_t> answered{0};
  int port = -1;

  Impl(std::shared_ptr<Engine> e, ServeOptions opt)
      : engine(std::move(e)),
        o(std::move(opt)),
        db(std::make_shared<GuardDb>(o.db)),
        keys(db),
        limiter(keys),
        audit(db),
        admission(o.workers, o.queue) {
    if (o.workers < 1 || o.queue < 0) fail("serve: --workers must be >= 1 and --queue >= 0, got ", o.workers, " and ", o.queue);
    const size_t threads = size_t(o.workers + o.queue + 8);  // free threads left for refusals and /health
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_payload_max_length(size_t(o.max_body));
    http.set_tcp_nodelay(true);  // headers and body leave in separate writes: without it, 40 ms of delayed ACK each
    http.set_read_timeout(30);
    http.set_write_timeout(30);
    routes();
  }

  // ---- the chain ---------------------------------------------------------------------

  void authenticate(const httplib::Request& req, Call& call) {
    std::string token = bearer_of(req);
    if (token.empty())
      throw ApiError(401, "invalid_request_error", "missing_api_key",
                     "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' (retort keys create makes one).");
    call.key = keys.authenticate(token);
    if (!call.key) {
      std::string shown = token.size() > 8 ? token.substr(0, 6) + "..." + token.substr(token.size() - 2) : "***";
      throw ApiError(401, "invalid_request_error", "invalid_api_key", cat("Incorrect API key provided: ", shown, "."));
    }
    call.audit.key_id = call.key->id;
    call.audit.key_name = call.key->name;
  }

  void require_admin(const Call& call) {
    if (!call.key->admin)
      throw ApiError(403, "invalid_request_error", "permission_denied",
                     cat("the key '", call.key->name, "' may not manage keys (create an admin key: retort keys create --admin)"));
  }

  void reserve(Call& call, int64_t tokens) {
    LimitDecision d = limiter.reserve(*call.key, tokens);
    call.headers = d.headers;
    if (!d.ok) {
      ApiError e(429, d.code == "insufficient_quota" ? "insufficient_quota" : "requests", d.code, d.message);
      e.retry_after = d.retry_after;
      throw e;
    }
    call.reservation = d.reservation;
  }

  void settle(Call& call, int64_t used) {
    if (call.settled) return;
    call.settled = true;
    limiter.settle(call.reservation, used);
  }

  // Last link: drop an unsettled reservation, write the audit row. Before the answer leaves.
  void record(Call& call, int status, const std::string& code = "") {
    if (call.recorded) return;
    call.recorded = true;
    if (!call.settled) {
      call.settled = true;
      limiter.release(call.reservation);
    }
    call.audit.status = status;
    call.audit.error_code = code;
    call.audit.latency_ms = 1000 * (steady_now() - call.start);
    try {
      audit.append(call.audit);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "serve: audit row not written: %s\n", e.what());
    }
    ++answered;
  }

  void admit(Call& call) {
    if (!admission.enter(o.timeout)) {
      auto [active, waiting] = admission.load();
      ApiError e(503, "server_error", "overloaded",
                 cat("The server is busy: ", active, " requests running and ", waiting, " waiting (limit ", o.queue,
                     "). Retry shortly."));
      e.retry_after = 1;
      throw e;
    }
    call.admitted = true;
  }
  void leave(Call& call) {
    if (call.admitted) admission.leave();
    call.admitted = false;
  }

  // ---- answers -----------------------------------------------------------------------

  static void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(dump(body), "application/json");
  }

  static void send_error(httplib::Response& res, const ApiError& e) {
    if (e.retry_after > 0) {
      res.set_header("Retry-After", std::to_string(int64_t(std::ceil(e.retry_after))));
      res.set_header("retry-after-ms", std::to_string(int64_t(std::ceil(e.retry_after * 1000))));
    }
    send_json(res, e.status, e.body());
  }

  // Runs `fn` inside the chain: every failure becomes an error object, every request one audit row.
  template <typename Fn>
  void handle(const httplib::Request& req, httplib::Response& res, const char* endpoint, bool needs_key, Fn fn) {
    auto call = std::make_shared<Call>();
    call->start = steady_now();
    call->audit.time = unix_now();
    call->audit.endpoint = endpoint;
    call->audit.client = req.remote_addr;
    call->audit.user_agent = req.get_header_value("User-Agent");
    try {
      try {
        if (needs_key) authenticate(req, *call);
        fn(call, req, res);
      } catch (const ApiError&) {
        throw;
      } catch (const c10::Error& e) {
        std::string m = e.what_without_backtrace();
        throw ApiError(500, "server_error", "model_error", "the model failed: " + m.substr(0, m.find('\n')));
      } catch (const std::exception& e) {
        throw ApiError(500, "server_error", "server_error", e.what());
      }
    } catch (const ApiError& e) {
      call->streaming = false;
      res.headers.erase("Content-Type");
      send_error(res, e);
      for (const auto& [k, v] : call->headers) res.set_header(k, v);
      leave(*call);
      record(*call, e.status, e.code);
      return;
    }
    for (const auto& [k, v] : call->headers) res.set_header(k, v);
    if (!call->streaming) {
      leave(*call);
      record(*call, res.status);
    }
  }

  // ---- routes ------------------------------------------------------------------------

  // The body's model, which must be of `kind` (the audit row learns its name first).
  const ServedModel& served(Call& call, const json& body, const std::string& kind) {
    call.audit.model = model_of(body);
    const ServedModel& m = engine->model(call.audit.model);
    if (m.kind != kind)
      bad_request("model", m.kind == "classifier" ? cat("'", m.id, "' is a classifier; use /v1/classify")
                                                  : cat("'", m.id, "' is a language model; use /v1/completions or /v1/chat/completions"));
    return m;
  }

  void completions(std::shared_ptr<Call> call, const httplib::Request& req, httplib::Response& res, bool chat) {
    json body = parse_body(req.body);
    const ServedModel& m = served(*call, body, "language_model");
    CompletionCall cc = chat ? parse_chat(body, m) : parse_completion(body, m);
    AuditRow& a = call->audit;
    a.prompt_hash = Hasher().update(chat ? dump(body.at("messages")) : cc.prompt_text).hex();
    a.prompt_chars = int64_t(cc.prompt_text.size());
    a.prompt_tokens = int64_t(cc.gen.prompt.size());
    a.n = cc.gen.n;
    a.max_tokens = cc.gen.max_tokens;
    a.logprobs = cc.gen.logprobs;
    a.echo = cc.gen.echo;
    a.stream = cc.stream;
    a.temperature = cc.gen.temperature;
    engine->validate(m, cc.gen);
    reserve(*call, a.prompt_tokens + cc.gen.max_tokens * cc.gen.n);
    admit(*call);
    Ids ids{new_id(chat ? "chatcmpl-" : "cmpl-"), int64_t(unix_now()), m.id};
    if (!cc.stream) {
      GenerationResult r = engine->generate(m, cc.gen);
      a.completion_tokens = r.completion_tokens;
      settle(*call, a.prompt_tokens + r.completion_tokens);
      send_json(res, 200, completion_response(cc, m, r, ids));
      return;
    }
    call->streaming = true;
    res.set_header("Cache-Control", "no-cache");
    const ServedModel* mp = &m;
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, call, mp, cc, ids](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& j) {
            std::string s = "data: " + dump(j) + "\n\n";
            return sink.write(s.data(), s.size());
          };
          int status = 200;
          std::string code;
          try {
            std::vector<size_t> offset(cc.gen.n, cc.gen.echo ? cc.prompt_text.size() : 0);
            if (cc.chat)
              for (int64_t c = 0; c < cc.gen.n; ++c) send(chat_chunk(*mp, ids, c, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
            GenerationResult r = engine->generate(*mp, cc.gen, [&](int64_t c, const std::string& text, const std::vector<TokenLogprob>* lp) {
              if (c < 0) {  // echo: the prompt first
                bool ok = true;
                for (int64_t k = 0; k < cc.gen.n && ok; ++k) ok = send(completion_chunk(*mp, ids, k, cc.prompt_text, lp, 0, nullptr));
                return ok;
              }
              bool ok = cc.chat ? send(chat_chunk(*mp, ids, c, {{"content", text}}, lp, nullptr))
                                : send(completion_chunk(*mp, ids, c, text, lp, offset[c], nullptr));
              offset[c] += text.size();
              return ok;
            });
            for (int64_t c = 0; c < int64_t(r.choices.size()); ++c) {
              const char* why = r.choices[c].finish_reason.c_str();
              cc.chat ? send(chat_chunk(*mp, ids, c, json::object(), nullptr, why))
                      : send(completion_chunk(*mp, ids, c, "", nullptr, offset[c], why));
            }
            if (cc.include_usage) {
              json u = {{"id", ids.id}, {"object", cc.chat ? "chat.completion.chunk" : "text_completion"},
                        {"created", ids.created}, {"model", ids.model}, {"choices", json::array()},
                        {"usage", usage_of(cc, r)}};
              send(u);
            }
            call->audit.completion_tokens = r.completion_tokens;
            settle(*call, call->audit.prompt_tokens + r.completion_tokens);
            if (!sink.is_writable()) status = 499, code = "client_closed";
          } catch (const ApiError& e) {
            status = e.status, code = e.code;
            send(e.body());
          } catch (const std::exception& e) {
            status = 500, code = "server_error";
            send(ApiError(500, "server_error", "server_error", e.what()).body());
          }
          leave(*call);
          record(*call, status, code);  // the row is durable before [DONE] leaves
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        },
        [this, call](bool) {  // the connection ended, however it ended
          leave(*call);
          record(*call, 499, "client_closed");
        });
  }

  void classify(std::shared_ptr<Call> call, const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req.body);
    const ServedModel& m = served(*call, body, "classifier");
    ClassifyCall cc = parse_classify(body, m);
    call->audit.prompt_hash = Hasher().update(dump(body.at("input"))).hex();
    call->audit.prompt_chars = int64_t(req.body.size());
    call->audit.prompt_tokens = call->audit.n = int64_t(cc.inputs.size());
    call->audit.logprobs = cc.top_k;
    reserve(*call, int64_t(cc.inputs.size()));
    admit(*call);
    auto probs = engine->classify(m, cc.inputs);
    settle(*call, int64_t(cc.inputs.size()));
    send_json(res, 200, classify_response(cc, m, probs, {new_id("clf-"), int64_t(unix_now()), m.id}));
  }

  static json key_json(const ApiKey& k) {
    return {{"object", "api_key"}, {"name", k.name}, {"prefix", k.prefix}, {"created", k.created},
            {"rpm", k.limits.rpm}, {"tpm", k.limits.tpm}, {"quota_tokens", k.limits.quota_tokens},
            {"used_tokens", k.used_tokens}, {"admin", k.admin}, {"revoked", k.revoked}};
  }

  void routes() {
    using Req = const httplib::Request&;
    using Res = httplib::Response&;
    http.Get("/health", [this](Req, Res res) {
      auto [active, waiting] = admission.load();
      json models = json::array();
      for (const auto& m : engine->models()) models.push_back(m->id);
      send_json(res, 200, {{"status", "ok"}, {"models", models}, {"running", active}, {"waiting", waiting},
                           {"answered", answered.load()}, {"uptime_s", steady_now() - started}});
    });
    http.Get("/v1/models", [this](Req req, Res res) {
      handle(req, res, "/v1/models", true, [this](auto, Req, Res res) {
        json data = json::array();
        for (const auto& m : engine->models()) data.push_back(m->describe());
        send_json(res, 200, {{"object", "list"}, {"data", data}});
      });
    });
    http.Get(R"(/v1/models/([^/]+))", [this](Req req, Res res) {
      handle(req, res, "/v1/models/{model}", true, [this](auto call, Req req, Res res) {
        call->audit.model = req.matches[1];
        send_json(res, 200, engine->model(req.matches[1]).describe());
      });
    });
    http.Get(R"(/v1/models/([^/]+)/tokenizer)", [this](Req req, Res res) {
      handle(req, res, "/v1/models/{model}/tokenizer", true, [this](auto call, Req req, Res res) {
        call->audit.model = req.matches[1];
        const ServedModel& m = engine->model(req.matches[1]);
        if (m.kind != "language_model")
          throw ApiError(404, "invalid_request_error", "no_tokenizer", cat("'", m.id, "' is a classifier: it has no tokenizer"));
        TokenizerFiles f = m.tokenizer->files();
        send_json(res, 200, {{"object", "tokenizer"}, {"model", m.id}, {"kind", m.tokenizer->kind()},
                             {"fingerprint", m.tokenizer->fingerprint()}, {"vocab_size", m.vocab_size},
                             {"files", {{"tokenizer.json", f.json}, {"tokenizer.model", base64_encode(f.model)}}}});
      });
    });
    http.Post("/v1/completions", [this](Req req, Res res) {
      handle(req, res, "/v1/completions", true, [this](auto call, Req req, Res res) { completions(call, req, res, false); });
    });
    http.Post("/v1/chat/completions", [this](Req req, Res res) {
      handle(req, res, "/v1/chat/completions", true, [this](auto call, Req req, Res res) { completions(call, req, res, true); });
    });
    http.Post("/v1/classify", [this](Req req, Res res) {
      handle(req, res, "/v1/classify", true, [this](auto call, Req req, Res res) { classify(call, req, res); });
    });
    // Key management for admin keys (the CLI's `retort keys` does the same on the database).
    http.Get("/v1/admin/keys", [this](Req req, Res res) {
      handle(req, res, "/v1/admin/keys", true, [this](auto call, Req, Res res) {
        require_admin(*call);
        json data = json::array();
        for (const auto& k : keys.list()) data.push_back(key_json(k));
        send_json(res, 200, {{"object", "list"}, {"data", data}});
      });
    });
    http.Post("/v1/admin/keys", [this](Req req, Res res) {
      handle(req, res, "/v1/admin/keys", true, [this](auto call, Req req, Res res) {
        require_admin(*call);
        json b = parse_body(req.body);
        if (!b.contains("name") || !b.at("name").is_string()) bad_request("name", "'name' (a string) is required");
        auto limit = [&](const char* k) {
          if (!b.contains(k) || b.at(k).is_null()) return int64_t(0);
          if (!b.at(k).is_number_integer() || b.at(k).get<int64_t>() < 0) bad_request(k, cat("'", k, "' must be an integer >= 0"));
          return b.at(k).get<int64_t>();
        };
        KeyLimits l{limit("rpm"), limit("tpm"), limit("quota_tokens")};
        bool admin = b.contains("admin") && b.at("admin").is_boolean() && b.at("admin").get<bool>();
        std::pair<ApiKey, std::string> made;
        try {
          made = keys.create(b.at("name").get<std::string>(), l, admin);
        } catch (const Error& e) {
          bad_request("name", e.what());
        }
        json out = key_json(made.first);
        out["key"] = made.second;
        send_json(res, 200, out);
      });
    });
    http.Delete(R"(/v1/admin/keys/([^/]+))", [this](Req req, Res res) {
      handle(req, res, "/v1/admin/keys/{name}", true, [this](auto call, Req req, Res res) {
        require_admin(*call);
        std::string name = req.matches[1];
        if (!keys.revoke(name))
          throw ApiError(404, "invalid_request_error", "key_not_found", cat("no key named '", name, "'"));
        send_json(res, 200, {{"object", "api_key.deleted"}, {"name", name}, {"deleted", true}});
      });
    });
    // Answers the transport makes on its own (unknown route 404, body too large 413, ...)
    // get an OpenAI error body and an audit row too.
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](Req req, Res res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string msg = res.status == 404   ? cat("Unknown request URL: ", req.method, " ", req.path)
                        : res.status == 413 && req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0
                            ? "The request body is larger than 8192 bytes, the limit for bodies sent as application/x-www-form-urlencoded "
                              "(what curl -d sends by default); send JSON with 'Content-Type: application/json'"
                        : res.status == 413 ? cat("The request body is larger than the limit of ", o.max_body, " bytes")
                                            : cat("HTTP ", res.status, " for ", req.method, " ", req.path);
      std::string code = res.status == 404 ? "unknown_url" : res.status == 413 ? "body_too_large" : "http_error";
      send_json(res, res.status, ApiError(res.status, "invalid_request_error", code, msg).body());
      Call call;
      call.start = steady_now();
      call.audit.time = unix_now();
      call.audit.endpoint = req.path;
      call.audit.client = req.remote_addr;
      call.audit.user_agent = req.get_header_value("User-Agent");
      call.settled = true;
      if (auto k = keys.authenticate(bearer_of(req))) call.audit.key_id = k->id, call.audit.key_name = k->name;
      record(call, res.status, code);
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](Req, Res res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_json(res, 500, ApiError(500, "server_error", "server_error", what).body());
    });
  }
};

Server::Server(std::shared_ptr<Engine> engine, ServeOptions options)
    : impl_(std::make_unique<Impl>(std::move(engine), std::move(options))) {}
Server::~Server() = default;

bool Server::bind() {
  Impl& s = *impl_;
  if (s.o.port == 0) {
    s.port = s.http.bind_to_any_port(s.o.host);
    return s.port > 0;
  }
  if (!s.http.bind_to_port(s.o.host, s.o.port)) return false;
  s.port = s.o.port;
  return true;
}

void Server::listen_after_bind() { impl_->http.listen_after_bind(); }

void Server::listen() {
  if (!bind()) fail("serve: cannot listen on ", impl_->o.host, ":", impl_->o.port, " (in use, or not an address of this machine)");
  listen_after_bind();
}

void Server::stop() { impl_->http.stop(); }
int Server::port() const { return impl_->port; }

}  // namespace retort
