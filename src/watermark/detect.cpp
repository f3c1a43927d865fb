// Detection: each distinct (context, token) pair scored once, exact null tails, several keys.
#include <cmath>
#include <set>

#include "retort/error.h"
#include "retort/watermark.h"

namespace retort {

namespace {

// log(exp(a) + exp(b)) without overflow.
double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  const double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

}  // namespace

double binomial_upper_tail(int64_t k, int64_t n, double p) {
  if (k <= 0) return 1;
  if (k > n) return 0;
  const double log_p = std::log(p), log_q = std::log1p(-p);
  double total = -INFINITY;
  for (int64_t i = k; i <= n; ++i)
    total = log_add(total, std::lgamma(double(n) + 1) - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) +
                               double(i) * log_p + double(n - i) * log_q);
  return std::min(1.0, std::exp(total));
}

double gamma_upper_tail(int64_t n, double s) {
  if (n <= 0 || s <= 0) return 1;
  // Q(n, s) = exp(-s) * sum_{i < n} s^i / i!  (integer shape n)
  double total = -INFINITY;
  const double log_s = std::log(s);
  for (int64_t i = 0; i < n; ++i) total = log_add(total, -s + double(i) * log_s - std::lgamma(double(i) + 1));
  return std::min(1.0, std::exp(total));
}

namespace {

// Distinct pairs under one salt: kgw counts green tokens, gumbel sums -log(1 - r).
Detection score_pairs(const Watermark& mark, const std::vector<int64_t>& contexts,
                      const std::vector<int64_t>& tokens, int64_t salt) {
  const WatermarkOptions& o = mark.options();
  const size_t h = size_t(o.context);
  Detection d;
  d.scheme = watermark_scheme_name(o.scheme);
  d.key_id = mark.key().id;
  std::set<std::vector<int64_t>> seen;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t* context = &contexts[i * h];
    std::vector<int64_t> pair(context, context + h);
    pair.push_back(tokens[i]);
    if (!seen.insert(std::move(pair)).second) continue;  // this (context, token) was scored already
    const double u = mark.uniform(context, tokens[i], salt);
    d.score += o.scheme == WatermarkScheme::Kgw ? (u < o.gamma ? 1.0 : 0.0) : -std::log1p(-u);
    ++d.tokens_scored;
  }
  const double n = double(d.tokens_scored);
  if (d.tokens_scored == 0) return d;
  if (o.scheme == WatermarkScheme::Kgw) {
    d.z = (d.score - o.gamma * n) / std::sqrt(n * o.gamma * (1 - o.gamma));
    d.p_value = binomial_upper_tail(int64_t(d.score), d.tokens_scored, o.gamma);
  } else {
    d.z = (d.score - n) / std::sqrt(n);
    d.p_value = gamma_upper_tail(d.tokens_scored, d.score);
  }
  return d;
}

}  // namespace

Detection detect_watermark_pairs(const Watermark& mark, const std::vector<int64_t>& contexts,
                                 const std::vector<int64_t>& tokens) {
  if (contexts.size() != tokens.size() * size_t(mark.options().context))
    fail("watermark detection: ", contexts.size(), " context ids for ", tokens.size(), " tokens of context h = ",
         mark.options().context);
  if (mark.options().scheme == WatermarkScheme::Kgw) return score_pairs(mark, contexts, tokens, 0);
  // gumbel: the salt of the row that wrote the text is unknown; try each, pay for the tries
  Detection best;
  for (int64_t salt = 0; salt < kGumbelSalts; ++salt) {
    Detection d = score_pairs(mark, contexts, tokens, salt);
    if (salt == 0 || d.p_value < best.p_value) best = d;
  }
  best.p_value = std::min(1.0, best.p_value * double(kGumbelSalts));
  return best;
}

Detection detect_watermark(const Watermark& mark, const std::vector<int64_t>& tokens) {
  const size_t h = size_t(mark.options().context);
  std::vector<int64_t> contexts, scored;
  // gumbel marks a position only at its context's first occurrence (WatermarkHook); later ones
  // were drawn plainly and would only dilute the score
  const bool first_only = mark.options().scheme == WatermarkScheme::Gumbel;
  std::set<std::vector<int64_t>> seen;
  for (size_t i = h; i < tokens.size(); ++i) {
    if (first_only && !seen.insert(std::vector<int64_t>(tokens.begin() + long(i - h), tokens.begin() + long(i))).second)
      continue;
    contexts.insert(contexts.end(), tokens.begin() + long(i - h), tokens.begin() + long(i));
    scored.push_back(tokens[i]);
  }
  return detect_watermark_pairs(mark, contexts, scored);
}

Detection detect_watermark(const std::vector<Watermark>& marks, const std::vector<int64_t>& tokens) {
  if (marks.empty()) fail("no watermark key to test against: add one with `retort guard keys rotate`");
  Detection best;
  bool first = true;
  for (const Watermark& m : marks) {
    Detection d = detect_watermark(m, tokens);
    if (first || d.p_value < best.p_value) best = d, first = false;
  }
  best.p_value = std::min(1.0, best.p_value * double(marks.size()));
  return best;
}

}  // namespace retort
