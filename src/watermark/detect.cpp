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

Detection detect_watermark(const Watermark& mark, const std::vector<int64_t>& tokens) {
  const WatermarkOptions& o = mark.options();
  Detection d;
  d.scheme = watermark_scheme_name(o.scheme);
  d.key_id = mark.key().id;
  std::set<std::vector<int64_t>> seen;
  for (size_t i = size_t(o.context); i < tokens.size(); ++i) {
    std::vector<int64_t> pair(tokens.begin() + (i - size_t(o.context)), tokens.begin() + i + 1);
    if (!seen.insert(std::move(pair)).second) continue;  // this (context, token) was scored already
    const double u = mark.uniform(&tokens[i - size_t(o.context)], tokens[i]);
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
