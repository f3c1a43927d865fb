// The guard's policy: which signals the campaign detector computes, the threshold and weight of
// each, how keys link into clusters, and which response a score earns. It comes from the
// guard.* keys of a config file (`retort serve --config configs/guard.toml`), checked there
// (an unknown key or a value out of range fails at start, naming the key). No torch, no HTTP.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace retort {

// Graduated responses, mildest first. `allow` is an operator's decision that the policy must
// leave alone (as is any operator action); `none` is no action.
enum class Response { none = 0, observe, throttle, strip, mark, block, allow };
const char* response_name(Response r);
Response response_from_name(const std::string& name);  // unknown -> Error listing the names

// The per-key (and per-cluster) signals, in the order reports show them.
enum class SignalKind {
  forcing_share,       // share of teacher-forcing shapes: echo + logprobs + max_tokens <= 1
  logprob_appetite,    // share of requests asking for >= 5 top logprobs
  template_repetition, // share of prompts that open with the key's most common 3 words
  novelty,             // share of prompts far (SimHash) from all the key's earlier ones
  coverage,            // distinct passages of the reference corpus the prompts reach
  volume,              // tokens in the last `hour`
  regularity,          // 1 / (1 + coefficient of variation of the gaps between requests)
  round_the_clock,     // share of the last 24 `hour`s with requests (after 6 hours seen)
};
constexpr int kSignalKinds = 8;
const char* signal_name(SignalKind k);

struct SignalRule {
  double threshold = 0;  // the signal fires at value >= threshold
  double weight = 0;     // its share of the score (weights are normalised to sum to 1)
};

struct DetectPolicy {
  bool enabled = false;           // guard.detect: the worker runs and actions are enforced
  bool trust_forwarded = false;   // guard.trust_forwarded: client = X-Forwarded-For's first address
  bool store_prompts = false;     // guard.store_prompts: keep prompt text in the audit row
  std::string reference;          // guard.reference: corpus for coverage ("kjv", a file; "" none)
  double hour = 3600;             // guard.hour: seconds in an "hour" (simulations compress time)
  double interval = 0.25;         // guard.interval: seconds between the worker's passes
  int64_t min_requests = 20;      // guard.min_requests: a key (or cluster) is scored from then on
  std::array<SignalRule, kSignalKinds> signals{};
  // Links between keys (guard.link.*): an edge when the weights of what two keys share add up
  // to >= link_threshold. A shared value used by more than `link_max_group` keys links nobody.
  // `shape`: the same dominant request shape, one that asks for logprobs (ordinary chat never links).
  double link_address = 0.5, link_user_agent = 0.3, link_template = 0.5, link_timing = 0.3, link_shape = 0.4;
  double link_threshold = 1.0;
  int64_t link_max_group = 200;
  // Responses (guard.response.*): the score (0..1) from which each applies.
  double observe = 0.2, throttle = 0.35, strip = 0.45, mark = 0.55, block = 0.6;
  double throttle_factor = 0.25;  // throttled keys get this share of their limits
  int64_t throttle_rpm = 6;       // ... or this many requests a minute when they had no limit
  int64_t strip_top = 1;          // stripped keys get at most this many top logprobs, no prompt logprobs
  double mark_delta = 6;          // kgw delta for keys under `mark`

  DetectPolicy();                 // the defaults above and per-signal defaults
  Response response_for(double score) const;
  // Throws naming the guard.* key when thresholds are not ascending or a weight sum is 0.
  void check() const;
};

}  // namespace retort
