// The keyed schemes: SipHash-2-4 as the pseudo-random function, kgw's green lists, gumbel's
// exponential-minimum pick.
#include "retort/watermark.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "retort/error.h"

namespace retort {

WatermarkScheme parse_watermark_scheme(const std::string& name) {
  if (name == "none") return WatermarkScheme::None;
  if (name == "kgw") return WatermarkScheme::Kgw;
  if (name == "gumbel") return WatermarkScheme::Gumbel;
  fail("unknown watermark scheme '", name, "': none | kgw | gumbel");
}

const char* watermark_scheme_name(WatermarkScheme scheme) {
  switch (scheme) {
    case WatermarkScheme::Kgw: return "kgw";
    case WatermarkScheme::Gumbel: return "gumbel";
    default: return "none";
  }
}

void check_watermark_options(const WatermarkOptions& o) {
  if (!(o.gamma > 0 && o.gamma < 1)) fail("watermark gamma = ", o.gamma, " must be in (0, 1)");
  if (!(o.delta >= 0 && o.delta <= 50)) fail("watermark delta = ", o.delta, " must be in [0, 50]");
  if (o.context < 1 || o.context > 8) fail("watermark context h = ", o.context, " must be in [1, 8]");
}

namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
  v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
}

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

uint64_t siphash24(const std::array<uint8_t, 16>& key, const void* data, size_t n) {
  const uint64_t k0 = load_le64(key.data()), k1 = load_le64(key.data() + 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  const auto* in = static_cast<const uint8_t*>(data);
  const size_t whole = n - n % 8;
  for (size_t i = 0; i < whole; i += 8) {
    const uint64_t m = load_le64(in + i);
    v3 ^= m;
    sip_round(v0, v1, v2, v3);
    sip_round(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = uint64_t(n & 0xff) << 56;
  for (size_t i = 0; i < n % 8; ++i) last |= uint64_t(in[whole + i]) << (8 * i);
  v3 ^= last;
  sip_round(v0, v1, v2, v3);
  sip_round(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) sip_round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

Watermark::Watermark(WatermarkKey key, WatermarkOptions options) : key_(std::move(key)), options_(options) {
  check_watermark_options(options_);
  if (options_.scheme == WatermarkScheme::None) fail("a watermark needs a scheme (kgw or gumbel), not none");
}

uint64_t Watermark::context_seed(const int64_t* context, int64_t salt) const {
  const size_t h = size_t(options_.context);
  if (salt == 0) return siphash24(key_.secret, context, sizeof(int64_t) * h);
  int64_t salted[9];  // h <= 8 ids, then the salt
  std::memcpy(salted, context, sizeof(int64_t) * h);
  salted[h] = salt;
  return siphash24(key_.secret, salted, sizeof(int64_t) * (h + 1));
}

double Watermark::uniform(const int64_t* context, int64_t token, int64_t salt) const {
  return token_uniform(context_seed(context, salt), token);
}

double Watermark::token_uniform(uint64_t seed, int64_t token) const {
  const int64_t pair[2] = {int64_t(seed), token};
  return double(siphash24(key_.secret, pair, sizeof pair) >> 11) * 0x1.0p-53;
}

torch::Tensor Watermark::mark_logits(const torch::Tensor& logits, const int64_t* context) const {
  torch::Tensor out = logits.to(torch::kFloat32).contiguous().clone();
  float* l = out.data_ptr<float>();
  const uint64_t seed = context_seed(context, 0);
  for (int64_t t = 0; t < out.numel(); ++t)
    if (token_uniform(seed, t) < options_.gamma) l[t] += float(options_.delta);  // the test green() makes
  return out;
}

int64_t Watermark::gumbel_pick(const torch::Tensor& probs, const int64_t* context, int64_t salt) const {
  torch::Tensor p = probs.to(torch::kFloat64).contiguous();
  const double* pp = p.data_ptr<double>();
  const uint64_t seed = context_seed(context, salt);
  int64_t best = -1;
  double best_value = -INFINITY;
  for (int64_t t = 0; t < p.numel(); ++t) {
    if (!(pp[t] > 0)) continue;
    const double r = token_uniform(seed, t) + 0x1.0p-54;  // (0, 1): log(r) is finite
    const double value = std::log(r) / pp[t];
    if (value > best_value) best_value = value, best = t;
  }
  if (best < 0) fail("gumbel watermark: the distribution has no token with positive probability");
  return best;
}

namespace {

// The last h ids of row b of seq (B, L), padded in front with -1 when L < h.
std::vector<int64_t> row_context(const torch::Tensor& seq, int64_t b, int64_t h) {
  std::vector<int64_t> context(size_t(h), -1);
  const int64_t L = seq.size(1), take = std::min(L, h);
  auto a = seq.accessor<int64_t, 2>();
  for (int64_t i = 0; i < take; ++i) context[size_t(h - take + i)] = a[b][L - take + i];
  return context;
}

}  // namespace

void WatermarkHook::adjust(torch::Tensor& logits, const torch::Tensor& seq) const {
  if (mark_.options().scheme != WatermarkScheme::Kgw) return;
  for (int64_t b = 0; b < logits.size(0); ++b)
    logits[b].copy_(mark_.mark_logits(logits[b], row_context(seq, b, mark_.options().context).data()));
}

torch::Tensor WatermarkHook::pick(const torch::Tensor& probs, const torch::Tensor& seq) const {
  if (mark_.options().scheme != WatermarkScheme::Gumbel) return {};
  const int64_t h = mark_.options().context, L = seq.size(1);
  torch::Tensor ids = torch::empty({probs.size(0)}, torch::kInt64);
  auto a = seq.accessor<int64_t, 2>();
  for (int64_t b = 0; b < probs.size(0); ++b) {
    const std::vector<int64_t> context = row_context(seq, b, h);
    // has the row's last h ids occurred before, ending at an earlier position?
    bool seen = false;
    for (int64_t end = h - 1; end + 1 < L && !seen; ++end) {
      int64_t i = 0;
      while (i < h && a[b][end - h + 1 + i] == context[size_t(i)]) ++i;
      seen = i == h;
    }
    ids[b] = seen ? -1 : mark_.gumbel_pick(probs[b], context.data(), b % kGumbelSalts);
  }
  return ids;
}

}  // namespace retort
