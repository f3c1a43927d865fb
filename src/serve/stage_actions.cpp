// Stage "actions in force" of the guard chain (chain.h): what the detector (or an operator)
// decided about a key, applied to its requests. The decisions come from durable action rows
// (retort/actions.h) that the worker (retort/detect_worker.h) reads and writes off the path;
// here it is one map lookup per request.
#include <algorithm>
#include <cstdio>

#include "retort/partner_rules.h"
#include "retort/text.h"
#include "serve/chain.h"

namespace retort::serve {

void GuardChain::start_guard() {
  const DetectPolicy& p = o_.guard;
  int64_t chunks = 0;
  if (!p.reference.empty()) {
    const TextCorpus c = load_text_corpus(p.reference);
    reference_ = std::make_shared<const ReferenceIndex>(c.documents);
    chunks = reference_->chunks();
    std::fprintf(stderr, "guard: coverage measured against %s (%lld passages)\n", c.source.c_str(), static_cast<long long>(chunks));
  }
  worker_ = std::make_unique<DetectWorker>(o_.db, p, chunks, in_force_);
  worker_->start();
  if (p.enabled)
    std::fprintf(stderr, "guard: campaign detection on (a pass every %g s; responses from score %g observe to %g block)\n", p.interval,
                 p.observe, p.block);
}

void GuardChain::enforce(Call& call) {
  call.action = in_force_->find(call.key->id, call.audit.time);
  if (!call.action || call.action->action == Response::allow || call.action->action == Response::none) {
    call.action.reset();
    return;
  }
  call.audit.action = response_name(call.action->action);
  if (call.action->action == Response::block) {
    const std::string why = call.action->source == "partner" ? partner_reason_for_client(*call.action) : call.action->reason;
    throw ApiError(403, "invalid_request_error", "key_blocked",
                   cat("This API key is blocked by the provider's guard (", call.action->source, " decision #", call.action->id,
                       why.empty() ? std::string() : ": " + why.substr(0, 300), "). Contact the provider to appeal."));
  }
}

ApiKey GuardChain::limited_key(const Call& call) const {
  ApiKey k = *call.key;
  if (!call.action || call.action->action < Response::throttle || call.action->action == Response::allow) return k;
  const double f = o_.guard.throttle_factor;
  auto lower = [&](int64_t limit, int64_t otherwise) { return limit > 0 ? std::max<int64_t>(1, int64_t(double(limit) * f)) : otherwise; };
  k.limits.rpm = lower(k.limits.rpm, o_.guard.throttle_rpm);
  k.limits.tpm = lower(k.limits.tpm, 0);
  return k;
}

void GuardChain::shape(const Call& call, GenerationRequest& gen) const {
  if (!call.action || call.action->action == Response::allow) return;
  if (call.action->action >= Response::strip) {
    gen.logprobs = std::min(gen.logprobs, o_.guard.strip_top);
    gen.prompt_logprobs = false;
  }
  if (call.action->action >= Response::mark) gen.mark_harder = true;
}

std::string GuardChain::client_address(const http::Request& req) const {
  if (o_.guard.trust_forwarded) {
    std::string f = req.header("X-Forwarded-For");
    f = f.substr(0, f.find(','));
    const size_t a = f.find_first_not_of(" \t"), b = f.find_last_not_of(" \t");
    if (a != std::string::npos) return f.substr(a, b - a + 1).substr(0, 64);
  }
  return req.remote_addr;
}

}  // namespace retort::serve
