// The guard chain (chain.h): authentication, limits, admission, settlement and the audit row
// around every handler; failures become OpenAI error objects.
#include "serve/chain.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <strings.h>

namespace retort::serve {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
double steady_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- admission ---------------------------------------------------------------------

bool Admission::enter(double timeout, int64_t rows) {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t ticket = next_ticket_;
  auto fits = [&] { return serving_ == ticket && (rows_ + rows <= capacity_ || active_ == 0); };
  if (!fits() && waiting_ >= queue_) return false;
  ++next_ticket_;
  ++waiting_;
  const bool ok = cv_.wait_for(lock, std::chrono::duration<double>(timeout), fits);
  --waiting_;
  if (ok) {
    ++active_;
    rows_ += rows;
  }
  // the next ticket's turn, whether this one entered or gave up (a ticket that gave up is
  // skipped: tickets behind it are served once it has left the line)
  if (ok) ++serving_;
  else abandoned_.insert(ticket);
  while (abandoned_.erase(serving_)) ++serving_;
  cv_.notify_all();
  return ok;
}

void Admission::leave(int64_t rows) {
  std::lock_guard<std::mutex> lock(mutex_);
  --active_;
  rows_ -= rows;
  cv_.notify_all();
}

std::pair<int64_t, int64_t> Admission::load() {
  std::lock_guard<std::mutex> lock(mutex_);
  return {active_, waiting_};
}

// ---- the chain ---------------------------------------------------------------------

namespace {

std::string bearer_of(const http::Request& req) {
  std::string h = req.header("Authorization");
  const std::string p = "Bearer ";
  if (h.size() > p.size() && strncasecmp(h.c_str(), p.c_str(), p.size()) == 0) return h.substr(p.size());
  return "";
}

void send_error(http::Response& res, const ApiError& e) {
  if (e.retry_after > 0) {
    res.set_header("Retry-After", std::to_string(int64_t(std::ceil(e.retry_after))));
    res.set_header("retry-after-ms", std::to_string(int64_t(std::ceil(e.retry_after * 1000))));
  }
  GuardChain::send_json(res, e.status, e.body());
}

}  // namespace

GuardChain::GuardChain(const ServeOptions& options)
    : o_(options),
      db_(std::make_shared<GuardDb>(o_.db)),
      keys_(db_),
      limiter_(keys_),
      audit_(db_),
      admission_(o_.workers * o_.max_batch, o_.queue),
      in_force_(std::make_shared<ActionsInForce>()) {
  if (o_.workers < 1 || o_.queue < 0 || o_.max_batch < 1)
    fail("serve: --workers and --max-batch must be >= 1 and --queue >= 0, got ", o_.workers, ", ", o_.max_batch, " and ", o_.queue);
  start_guard();
  start_partner();
}

GuardChain::~GuardChain() {
  if (worker_) worker_->stop();
}

std::string GuardChain::dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void GuardChain::send_json(http::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void GuardChain::authenticate(const http::Request& req, Call& call) {
  std::string token = bearer_of(req);
  if (token.empty())
    throw ApiError(401, "invalid_request_error", "missing_api_key",
                   "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' (retort keys create makes one).");
  call.key = keys_.authenticate(token);
  if (!call.key) {
    std::string shown = token.size() > 8 ? token.substr(0, 6) + "..." + token.substr(token.size() - 2) : "***";
    throw ApiError(401, "invalid_request_error", "invalid_api_key", cat("Incorrect API key provided: ", shown, "."));
  }
  call.audit.key_id = call.key->id;
  call.audit.key_name = call.key->name;
  enforce(call);
  match_partners(call, /*prompt_known=*/false);
}

void GuardChain::require_admin(const Call& call) const {
  if (!call.key->admin)
    throw ApiError(403, "invalid_request_error", "permission_denied",
                   cat("the key '", call.key->name, "' may not manage keys (create an admin key: retort keys create --admin)"));
}

void GuardChain::reserve(Call& call, int64_t tokens) {
  LimitDecision d = limiter_.reserve(limited_key(call), tokens);
  call.headers = d.headers;
  if (!d.ok) {
    ApiError e(429, d.code == "insufficient_quota" ? "insufficient_quota" : "requests", d.code, d.message);
    e.retry_after = d.retry_after;
    throw e;
  }
  call.reservation = d.reservation;
}

void GuardChain::settle(Call& call, int64_t used) {
  if (call.settled) return;
  call.settled = true;
  call.audit.settled_tokens = limiter_.settle_for_audit(call.reservation, used);
}

void GuardChain::record(Call& call, int status, const std::string& code) {
  if (call.recorded) return;
  call.recorded = true;
  if (!call.settled) {
    call.settled = true;
    limiter_.release(call.reservation);
  }
  call.audit.status = status;
  call.audit.error_code = code;
  call.audit.latency_ms = 1000 * (steady_now() - call.start);
  try {
    audit_group_.append(call.audit);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve: audit row not written: %s\n", e.what());
  }
  ++answered_;
}

void GuardChain::admit(Call& call, int64_t rows) {
  rows = std::max<int64_t>(1, rows);
  if (!admission_.enter(o_.timeout, rows)) {
    auto [active, waiting] = admission_.load();
    ApiError e(503, "server_error", "overloaded",
               cat("The server is busy: ", active, " requests running and ", waiting, " waiting (limit ", o_.queue,
                   "). Retry shortly."));
    e.retry_after = 1;
    throw e;
  }
  call.admitted = true;
  call.rows = rows;
}

void GuardChain::leave(Call& call) {
  if (call.admitted) admission_.leave(call.rows);
  call.admitted = false;
}

void GuardChain::handle(const http::Request& req, http::Response& res, const char* endpoint, bool needs_key, const RouteFn& fn) {
  auto call = std::make_shared<Call>();
  call->start = steady_now();
  call->audit.time = unix_now();
  call->audit.endpoint = endpoint;
  call->audit.client = client_address(req);
  call->audit.user_agent = req.header("User-Agent");
  try {
    try {
      if (needs_key) authenticate(req, *call);
      fn(call, req, res);
    } catch (const ApiError&) {
      throw;
    } catch (const json::exception& e) {  // a field of an unexpected shape that no check caught
      throw ApiError(400, "invalid_request_error", "invalid_value", cat("The request body has a value retort cannot use: ", e.what()));
    } catch (const c10::Error& e) {
      std::string m = e.what_without_backtrace();
      throw ApiError(500, "server_error", "model_error", "the model failed: " + m.substr(0, m.find('\n')));
    } catch (const std::exception& e) {
      throw ApiError(500, "server_error", "server_error", e.what());
    }
  } catch (const ApiError& e) {
    call->streaming = false;
    res.stream = nullptr;
    res.erase_header("Cache-Control");
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

void GuardChain::transport_error(const http::Request& req, http::Response& res, const std::string& code, const std::string& message) {
  std::string msg = message;
  if (res.status == 413 && req.header("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0)
    msg += " (curl -d sends application/x-www-form-urlencoded by default: send JSON with 'Content-Type: application/json')";
  auto shape = std::find_if(error_shapes_.begin(), error_shapes_.end(), [&](const auto& s) { return req.path.rfind(s.first, 0) == 0; });
  if (shape != error_shapes_.end()) shape->second(res, msg);
  else send_json(res, res.status, ApiError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error", code, msg).body());
  if (res.status != 404 && res.status != 413) return;  // timeouts and malformed bytes are not audited
  Call call;
  call.start = steady_now();
  call.audit.time = unix_now();
  call.audit.endpoint = req.path;
  call.audit.client = client_address(req);
  call.audit.user_agent = req.header("User-Agent");
  call.settled = true;
  try {
    if (auto k = keys_.authenticate(bearer_of(req))) call.audit.key_id = k->id, call.audit.key_name = k->name;
  } catch (const std::exception&) {  // the row is still written, without the key
  }
  record(call, res.status, code);
}

}  // namespace retort::serve
