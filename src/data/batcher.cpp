// Deterministic shuffled batches with optional crop/flip augmentation.
#include <random>

#include "retort/data.h"
#include "retort/error.h"

namespace retort {

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
  // splitmix64 over the three words: different inputs give unrelated streams.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(a) ^ b) ^ c);
}

namespace {

// One crop and flip of a padded image (C, H + 2p, W + 2p) drawn from `rng`, into `dst` (C, H, W).
void crop_flip(const torch::Tensor& padded, int64_t p, bool hflip, std::mt19937_64& rng, torch::Tensor dst) {
  const int64_t H = dst.size(1), W = dst.size(2);
  std::uniform_int_distribution<int64_t> off(0, 2 * p);
  std::bernoulli_distribution flip(0.5);
  int64_t dy = p > 0 ? off(rng) : 0, dx = p > 0 ? off(rng) : 0;
  torch::Tensor img = padded.narrow(1, dy, H).narrow(2, dx, W);
  if (hflip && flip(rng)) img = img.flip({2});
  dst.copy_(img);
}

}  // namespace

torch::Tensor fixed_views(const ImageSet& set, const torch::Tensor& index, const torch::Tensor& view,
                          const AugmentOptions& augment) {
  if (!augment.enabled()) fail("fixed views need an augmentation (train.crop_padding or train.hflip)");
  const int64_t p = augment.crop_padding;
  torch::Tensor x = set.images.index_select(0, index);
  torch::Tensor src = p > 0 ? torch::constant_pad_nd(x, {p, p, p, p}, set.black) : x;
  torch::Tensor dst = torch::empty_like(x);
  auto idx = index.accessor<int64_t, 1>();
  auto v = view.accessor<int64_t, 1>();
  for (int64_t i = 0; i < x.size(0); ++i) {
    // a constant key, not the run's seed: view k of an image is the same picture in every run
    std::mt19937_64 rng(mix_seed(0x766965777, uint64_t(idx[i]), uint64_t(v[i])));
    crop_flip(src[i], p, augment.hflip, rng, dst[i]);
  }
  return dst;
}

Batcher::Batcher(const ImageSet& set, int64_t batch_size, bool shuffle, uint64_t seed,
                 AugmentOptions augment, double pad_value)
    : set_(&set), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), augment_(augment),
      pad_value_(pad_value) {
  if (batch_size <= 0) fail("batch size must be >= 1, got ", batch_size);
  if (set.size() == 0) fail("dataset ", set.source, " is empty");
  if (augment_.views < 0) fail("train.views must be >= 0, got ", augment_.views);
  if (augment_.views > 0 && !augment_.enabled())
    fail("train.views = ", augment_.views, " needs an augmentation to make views from: set train.crop_padding or train.hflip");
}

int64_t Batcher::batches_per_epoch() const { return (set_->size() + batch_size_ - 1) / batch_size_; }

Batch Batcher::batch(int64_t epoch, int64_t b) const {
  int64_t n = set_->size();
  if (b < 0 || b >= batches_per_epoch()) fail("batch ", b, " out of range [0, ", batches_per_epoch(), ")");
  if (shuffle_ && order_epoch_ != epoch) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed_, epoch));
    order_ = torch::randperm(n, gen, torch::kInt64);
    order_epoch_ = epoch;
  }
  int64_t start = b * batch_size_, len = std::min(batch_size_, n - start);
  Batch out;
  out.index = shuffle_ ? order_.narrow(0, start, len) : torch::arange(start, start + len, torch::kInt64);
  out.x = set_->images.index_select(0, out.index);
  out.y = set_->labels.index_select(0, out.index);
  if (augment_.views > 0) {
    // each example's view this epoch: drawn from (seed, epoch, example), so a resumed run agrees
    out.view = torch::empty({len}, torch::kInt64);
    auto idx = out.index.accessor<int64_t, 1>();
    auto v = out.view.accessor<int64_t, 1>();
    for (int64_t i = 0; i < len; ++i) v[i] = int64_t(mix_seed(seed_, epoch, uint64_t(idx[i]) + 1) % uint64_t(augment_.views));
    out.x = fixed_views(*set_, out.index, out.view, augment_);
  } else if (augment_.enabled()) {
    std::mt19937_64 rng(mix_seed(seed_, epoch, b + 1));
    const int64_t p = augment_.crop_padding;
    torch::Tensor src = p > 0 ? torch::constant_pad_nd(out.x, {p, p, p, p}, pad_value_) : out.x;
    torch::Tensor dst = torch::empty_like(out.x);
    for (int64_t i = 0; i < len; ++i) crop_flip(src[i], p, augment_.hflip, rng, dst[i]);
    out.x = dst;
    out.augmented = true;
  }
  return out;
}

}  // namespace retort
