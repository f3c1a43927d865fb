// DAWN's keyed choice of marked inputs and wrong classes, and its test (retort/dawn.h).
#include "retort/dawn.h"

#include <cmath>

#include "retort/error.h"

namespace retort {

namespace {

// The keyed hash of the rounded pixels, under one of two domains (which inputs, which class).
uint64_t pixel_hash(const WatermarkKey& key, const std::vector<float>& pixels, uint8_t domain) {
  std::vector<uint8_t> bytes;
  bytes.reserve(pixels.size() + 1);
  bytes.push_back(domain);
  for (float p : pixels) bytes.push_back(uint8_t(std::lround(std::min(255.0f, std::max(0.0f, p)))));
  return siphash24(key.secret, bytes.data(), bytes.size());
}

}  // namespace

int64_t dawn_class(const WatermarkKey& key, double share, const std::vector<float>& pixels, int64_t top,
                   int64_t classes) {
  if (classes < 2 || top < 0 || top >= classes) fail("dawn: top class ", top, " of ", classes);
  if (!(double(pixel_hash(key, pixels, 0) >> 11) * 0x1.0p-53 < share)) return -1;
  const int64_t other = int64_t(pixel_hash(key, pixels, 1) % uint64_t(classes - 1));  // 0 .. classes-2
  return other < top ? other : other + 1;  // every class but `top`, equally likely
}

Detection dawn_test(const std::string& key_id, const std::vector<int64_t>& predicted, const std::vector<int64_t>& answered,
                    const std::vector<int64_t>& served_top, int64_t classes) {
  if (predicted.size() != answered.size() || served_top.size() != answered.size())
    fail("dawn: ", predicted.size(), " predictions and ", served_top.size(), " top classes for ", answered.size(), " answers");
  if (classes < 2) fail("dawn: a classifier has at least 2 classes, got ", classes);
  Detection d;
  d.scheme = "dawn";
  d.key_id = key_id;
  for (size_t i = 0; i < answered.size(); ++i) {
    if (predicted[i] == served_top[i] || answered[i] == served_top[i]) continue;
    ++d.tokens_scored;
    d.score += predicted[i] == answered[i];
  }
  const double p = 1.0 / double(classes - 1), n = double(d.tokens_scored);
  if (d.tokens_scored == 0) return d;
  d.z = (d.score - n * p) / std::sqrt(n * p * (1 - p));
  d.p_value = binomial_upper_tail(int64_t(d.score), d.tokens_scored, p);
  return d;
}

}  // namespace retort
