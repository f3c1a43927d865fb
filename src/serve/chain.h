// The guard chain every request to `retort serve` passes (serve-private):
//   authenticate -> actions in force -> [route: parse -> telemetry -> limits (reserve) ->
//   admission -> model -> settle] -> audit (+ telemetry columns); the detector reads the audit
//   rows off the request path (retort/detect_worker.h) and writes the actions in force.
// One place runs a handler inside it, so that every failure becomes an OpenAI error object and
// every request leaves exactly one audit row, committed with the key's usage before the answer
// leaves. Later stages (actions in force, telemetry, watermarks) are added here, one each.
#pragma once
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "retort/actions.h"
#include "retort/detect_worker.h"
#include "retort/guard.h"
#include "retort/serve.h"
#include "retort/telemetry.h"
#include "serve/audit_group.h"
#include "serve/transport.h"

namespace retort::serve {

using nlohmann::json;

// At most `rows` rows in the models at once (workers x max_batch: a request's n choices, or its
// inputs up to max_batch, are its rows) and `queue` requests waiting, first come first served; a
// request that finds the queue full is refused at once (503), one that waits too long too. A
// request with more rows than all enters when nothing else runs.
class Admission {
 public:
  Admission(int64_t rows, int64_t queue) : capacity_(rows), queue_(queue) {}
  bool enter(double timeout, int64_t rows);
  void leave(int64_t rows);
  std::pair<int64_t, int64_t> load();  // (requests running, waiting)

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int64_t capacity_, queue_, rows_ = 0, active_ = 0, waiting_ = 0;
  uint64_t next_ticket_ = 0, serving_ = 0;  // FIFO: tickets enter in order
  std::set<uint64_t> abandoned_;             // tickets that gave up (timed out) before their turn
};

// One request on its way through the chain; shared with a streamed body that outlives the handler.
struct Call {
  AuditRow audit;
  std::optional<ApiKey> key;
  Reservation reservation;
  HeaderList headers;  // x-ratelimit-*
  double start = 0;
  bool settled = false, recorded = false, streaming = false, admitted = false;
  int64_t rows = 0;  // admitted rows (Admission)
  std::optional<ActionRow> action;  // the guard's action in force for the key (stage_actions.cpp)
};

using CallPtr = std::shared_ptr<Call>;
struct PartnerStage;  // stage_partner.cpp
using RouteFn = std::function<void(const CallPtr&, const http::Request&, http::Response&)>;

class GuardChain {
 public:
  explicit GuardChain(const ServeOptions& options);
  ~GuardChain();

  // Runs `fn` inside the chain (authenticating first when `needs_key`). Never throws.
  void handle(const http::Request& req, http::Response& res, const char* endpoint, bool needs_key, const RouteFn& fn);
  // An answer the transport made by itself (unknown route, body too large): the error body,
  // and an audit row for those a client could mean (404, 413).
  void transport_error(const http::Request& req, http::Response& res, const std::string& code, const std::string& message);
  // A route family whose errors are not OpenAI objects (TAXII): the transport's answers for
  // paths under `prefix` take their body from `shape` (res.status is set). Before serving only.
  using ErrorShape = std::function<void(http::Response& res, const std::string& message)>;
  void shape_transport_errors(std::string prefix, ErrorShape shape) { error_shapes_.push_back({std::move(prefix), std::move(shape)}); }

  void require_admin(const Call& call) const;
  void reserve(Call& call, int64_t tokens);  // 429 with Retry-After when a limit refuses
  void settle(Call& call, int64_t used);     // in memory now; durable with the audit row
  void admit(Call& call, int64_t rows = 1);  // 503 with Retry-After when the queue is full
  void leave(Call& call);
  // Last link: drops an unsettled reservation, writes the audit row (with the settled usage,
  // in one transaction). Before the answer leaves; once per call.
  void record(Call& call, int status, const std::string& code = "");

  // Stage "actions in force" (stage_actions.cpp), right after authentication: a blocked key is
  // refused (403 key_blocked, with the reason); throttled keys reserve against lowered limits.
  void enforce(Call& call);
  // The same stage's say over a generation: strip caps logprobs and drops echoed prompt
  // logprobs; mark samples with the stronger watermark.
  void shape(const Call& call, GenerationRequest& gen) const;
  // Stage "partner rules" (stage_partner.cpp): partners' indicators matched against the request
  // (after authentication; again with `prompt_known` once the audit row has the prompt's
  // fingerprints and shape); a stronger match than the key's action in force is written as a
  // "partner" action row and enforced at once (403 key_blocked for a block).
  void match_partners(Call& call, bool prompt_known);
  // Stage "telemetry" (stage_telemetry.cpp): the prompt's fingerprints into the audit row.
  void describe_prompt(Call& call, const std::string& text) const;
  const DetectPolicy& policy() const { return o_.guard; }

  static void send_json(http::Response& res, int status, const json& body);
  static std::string dump(const json& j);  // compact, invalid UTF-8 replaced

  KeyStore& keys() { return keys_; }
  const std::shared_ptr<GuardDb>& db() { return db_; }
  std::pair<int64_t, int64_t> load() { return admission_.load(); }
  int64_t answered() const { return answered_.load(); }
  const DetectWorker* detect_worker() const { return worker_.get(); }  // its snapshot() (the dashboard)

 private:
  void authenticate(const http::Request& req, Call& call);
  void start_guard();                         // stage_actions.cpp: reference corpus, worker
  void start_partner();                       // stage_partner.cpp: partner rules, intel worker
  ApiKey limited_key(const Call& call) const;  // the key with its limits lowered when throttled
  std::string client_address(const http::Request& req) const;  // X-Forwarded-For when trusted

  ServeOptions o_;
  std::shared_ptr<GuardDb> db_;
  KeyStore keys_;
  RateLimiter limiter_;
  AuditLog audit_;
  AuditGroup audit_group_{audit_};  // record() commits rows that arrive together in one transaction
  Admission admission_;
  std::atomic<int64_t> answered_{0};
  std::shared_ptr<ActionsInForce> in_force_;
  std::shared_ptr<const ReferenceIndex> reference_;
  std::unique_ptr<DetectWorker> worker_;  // detection (guard.detect) and others' action rows
  std::shared_ptr<PartnerStage> partner_;  // partners' rules and the intel worker
  std::vector<std::pair<std::string, ErrorShape>> error_shapes_;  // shape_transport_errors
};

double unix_now();
double steady_now();

}  // namespace retort::serve
