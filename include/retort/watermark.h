// Output watermarks: a keyed mark in the tokens a model writes, that a provider can later test
// for with a p-value. Two schemes, both keyed by a secret and the h tokens before each position:
//   kgw     the green list of Kirchenbauer et al. (2023): a keyed hash of (context, token) puts a
//           share gamma of the vocabulary on a green list; delta is added to green logits.
//           Detection counts green tokens: a binomial tail under the null.
//   gumbel  the distortion-free exponential-minimum sampler (Aaronson; Kuditipudi et al.): each
//           candidate gets a keyed uniform r_t and the token maximising log(r_t) / p_t is chosen,
//           which samples exactly from p. Detection sums -log(1 - r) of the tokens: a Gamma tail.
// Each (context, token) pair is scored once (repeated n-grams would inflate the score; Fernandez
// et al. 2023), and a test over several keys multiplies the smallest p-value by their number.
// gumbel is deterministic given the key and the context, so rows of one batch (the n choices of
// a request) each take a salt (row mod kGumbelSalts) that joins the context's hash; its detector
// tries every salt and multiplies the smallest p-value by kGumbelSalts.
#pragma once
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "retort/generate.h"

namespace retort {

inline constexpr int64_t kGumbelSalts = 8;

enum class WatermarkScheme { None, Kgw, Gumbel };
WatermarkScheme parse_watermark_scheme(const std::string& name);  // none | kgw | gumbel; else Error
const char* watermark_scheme_name(WatermarkScheme scheme);

struct WatermarkKey {
  std::string id;                   // public: names the key in audit rows and evidence
  std::array<uint8_t, 16> secret{};  // never printed
};

struct WatermarkOptions {
  WatermarkScheme scheme = WatermarkScheme::Kgw;
  double gamma = 0.25;    // kgw: green share of the vocabulary, in (0, 1)
  double delta = 2.0;     // kgw: added to green logits, >= 0
  int64_t context = 1;    // h: tokens before a position that key it, >= 1
};
// Error unless gamma in (0, 1), delta in [0, 50], context in [1, 8]; names the bad value.
void check_watermark_options(const WatermarkOptions& o);

// SipHash-2-4: the keyed pseudo-random function behind both schemes.
uint64_t siphash24(const std::array<uint8_t, 16>& key, const void* data, size_t n);

class Watermark {
 public:
  Watermark(WatermarkKey key, WatermarkOptions options);
  const WatermarkKey& key() const { return key_; }
  const WatermarkOptions& options() const { return options_; }

  // The keyed value of (the `context` tokens before a position, token): uniform on [0, 1).
  // `context` holds exactly options().context ids.
  // Ids in the context may be negative: positions before the text (a prompt shorter than h).
  double uniform(const int64_t* context, int64_t token, int64_t salt = 0) const;
  bool green(const int64_t* context, int64_t token) const { return uniform(context, token) < options_.gamma; }

  // kgw: logits (V) for the position after `context` with delta added to the green tokens.
  torch::Tensor mark_logits(const torch::Tensor& logits, const int64_t* context) const;
  // gumbel: the token that `probs` (V, summing to 1; zeros never chosen) yields at the position
  // after `context`: argmax log(r_t) / p_t.
  int64_t gumbel_pick(const torch::Tensor& probs, const int64_t* context, int64_t salt = 0) const;

 private:
  uint64_t context_seed(const int64_t* context, int64_t salt) const;
  // The keyed uniform of `token` under a context's seed: what green(), mark_logits(), gumbel_pick()
  // and the detector all test, so they cannot disagree.
  double token_uniform(uint64_t seed, int64_t token) const;
  WatermarkKey key_;
  WatermarkOptions options_;
};

// The watermark as a sampling hook (retort/generate.h): kgw adjusts the logits, gumbel picks the
// token. Each row's context is the last h ids of its sequence, padded with -1 before the text.
// gumbel leaves a position to the ordinary draw when its context already occurred in the row:
// being a function of the context, it would otherwise repeat itself in a loop (the detector
// scores each (context, token) once, so those positions carried no evidence anyway).
class WatermarkHook : public SamplingHook {
 public:
  explicit WatermarkHook(const Watermark& mark) : mark_(mark) {}
  void adjust(torch::Tensor& logits, const torch::Tensor& seq) const override;
  torch::Tensor pick(const torch::Tensor& probs, const torch::Tensor& seq) const override;

 private:
  const Watermark& mark_;
};

struct Detection {
  std::string scheme, key_id;
  int64_t tokens_scored = 0;  // distinct (context, token) pairs
  double score = 0;           // kgw: green tokens; gumbel: sum of -log(1 - r)
  double z = 0;               // (score - mean) / sd under the null
  double p_value = 1;         // exact tail: binomial (kgw), Gamma(n, 1) (gumbel)
};

// Scores `tokens` (ids as written, the first `context` only as context) once per distinct
// (context, token) pair; gumbel only at each context's first occurrence (where it marks).
Detection detect_watermark(const Watermark& mark, const std::vector<int64_t>& tokens);
// Scores pairs given apart: contexts holds h ids per token (row-major), as when a suspect's
// predictions are scored against the contexts of a text (radioactivity). Each distinct pair once.
Detection detect_watermark_pairs(const Watermark& mark, const std::vector<int64_t>& contexts,
                                 const std::vector<int64_t>& tokens);
// The best of several keys, its p-value multiplied by their number (capped at 1).
Detection detect_watermark(const std::vector<Watermark>& marks, const std::vector<int64_t>& tokens);

// Exact tails, for the detectors and their tests: P(X >= k) for X ~ Binomial(n, p), and
// P(S >= s) for S ~ Gamma(n, 1) (the sum of n unit exponentials).
double binomial_upper_tail(int64_t k, int64_t n, double p);
double gamma_upper_tail(int64_t n, double s);

}  // namespace retort
