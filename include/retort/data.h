// Image datasets: the IDX reader (Fashion-MNIST, MNIST or any IDX set, .gz or
// plain), normalisation, augmentation and deterministic shuffled batches.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace retort {

// A raw IDX array of unsigned bytes (type code 0x08).
struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

// Reads an IDX file; gzip-compressed files are detected and inflated. Throws
// retort::Error naming the file on a missing file, wrong magic, unsupported
// type, truncated data or trailing bytes.
IdxArray read_idx(const std::filesystem::path& path);

struct ImageSet {
  torch::Tensor images;     // (N, C, H, W) float32, normalised
  torch::Tensor labels;     // (N) int64 in [0, num_classes)
  int64_t num_classes = 0;  // max label + 1
  double black = 0;         // the normalised value of a 0 pixel (padding value)
  std::string source;       // where it came from, for reports
  int64_t size() const { return labels.size(0); }
};

struct ImageSetOptions {
  std::string dir;          // folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
  std::string split;        // "train" or "test"
  int64_t subset = 0;       // keep the first `subset` examples (0 = all)
  double mean = 0.2860;     // of pixel/255 over the training set
  double std = 0.3530;
};

ImageSet load_image_set(const ImageSetOptions& opts);

struct AugmentOptions {
  int64_t crop_padding = 0;  // random crop after zero-padding each side by this many pixels (0 = off)
  bool hflip = false;        // random horizontal flip with probability 1/2
  int64_t views = 0;         // > 0: each example is shown as one of this many fixed augmented views,
                             // the same for every run and seed, so a teacher's answers to all of them
                             // can be cached (Beyer et al. 2022: the teacher sees the student's view)
  bool enabled() const { return crop_padding > 0 || hflip; }
};

// View `view[i]` of example `index[i]` (B each): a crop and flip drawn from (index, view) alone,
// so that every run, seed and the teacher's cache see the same pixels. (B, C, H, W).
torch::Tensor fixed_views(const ImageSet& set, const torch::Tensor& index, const torch::Tensor& view,
                          const AugmentOptions& augment);

// One training batch. Images: x (B, C, H, W) float32, y (B) labels. Text: x (B, T)
// int64 token ids, y (B, T) int64 next tokens, kIgnoreLabel (-100, retort/labels.h) where
// nothing counts.
struct Batch {
  torch::Tensor x;
  torch::Tensor y;
  torch::Tensor index;     // (B) int64 positions in the dataset (teacher-cache keys)
  torch::Tensor view;      // (B) int64 fixed view of each example (AugmentOptions::views); undefined: none
  bool augmented = false;  // x is not the stored example (augmented or generated): no cache hit
  double share = 1.0;      // data parallelism: this rank's fraction of the global batch's targets
};

// What the trainer draws batches from. Batch (epoch, b) must depend only on
// (seed, epoch, b), so that a resumed run sees exactly the same data.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  virtual Batch batch(int64_t epoch, int64_t b) const = 0;
};

// Deterministic image batches: the order of epoch e and the augmentation of batch b
// depend only on (seed, e, b).
class Batcher : public BatchSource {
 public:
  Batcher(const ImageSet& set, int64_t batch_size, bool shuffle, uint64_t seed,
          AugmentOptions augment = {}, double pad_value = 0.0);
  int64_t batches_per_epoch() const override;
  Batch batch(int64_t epoch, int64_t b) const override;
  const ImageSet& set() const { return *set_; }

 private:
  const ImageSet* set_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  AugmentOptions augment_;
  double pad_value_;  // normalised value of a black pixel
  mutable int64_t order_epoch_ = -1;
  mutable torch::Tensor order_;
};

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

}  // namespace retort
