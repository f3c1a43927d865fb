// The guard's policy (retort/policy.h): defaults, names, checks.
#include "retort/policy.h"

#include "retort/error.h"

namespace retort {

namespace {

constexpr const char* kResponseNames[] = {"none", "observe", "throttle", "strip", "mark", "block", "allow"};
constexpr const char* kSignalNames[] = {"forcing_share", "logprob_appetite", "template_repetition", "novelty",
                                        "coverage",      "volume",           "regularity",          "round_the_clock"};

}  // namespace

const char* response_name(Response r) { return kResponseNames[int(r)]; }

Response response_from_name(const std::string& name) {
  for (int i = 0; i < 7; ++i)
    if (name == kResponseNames[i]) return Response(i);
  fail("unknown action '", name, "' (observe | throttle | strip | mark | block | allow)");
}

const char* signal_name(SignalKind k) { return kSignalNames[int(k)]; }

DetectPolicy::DetectPolicy() {
  auto set = [&](SignalKind k, double threshold, double weight) { signals[size_t(k)] = {threshold, weight}; };
  set(SignalKind::forcing_share, 0.5, 0.25);
  set(SignalKind::logprob_appetite, 0.5, 0.25);
  set(SignalKind::template_repetition, 0.6, 0.15);
  set(SignalKind::novelty, 0.9, 0.1);
  set(SignalKind::coverage, 50, 0.25);
  set(SignalKind::volume, 200000, 0.15);
  set(SignalKind::regularity, 0.6, 0.1);
  set(SignalKind::round_the_clock, 0.8, 0.1);
}

Response DetectPolicy::response_for(double score) const {
  if (score >= block) return Response::block;
  if (score >= mark) return Response::mark;
  if (score >= strip) return Response::strip;
  if (score >= throttle) return Response::throttle;
  if (score >= observe) return Response::observe;
  return Response::none;
}

void DetectPolicy::check() const {
  const double levels[] = {observe, throttle, strip, mark, block};
  const char* names[] = {"observe", "throttle", "strip", "mark", "block"};
  for (int i = 1; i < 5; ++i)
    if (levels[i] < levels[i - 1])
      fail("guard.response.", names[i], " = ", levels[i], " is below guard.response.", names[i - 1], " = ", levels[i - 1],
           ": the responses must be in ascending order of score");
  double sum = 0;
  for (const SignalRule& r : signals) sum += r.weight;
  if (sum <= 0) fail("guard.signal.*.weight: every weight is 0, so no key could ever score");
}

}  // namespace retort
