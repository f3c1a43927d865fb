// IDX reader on good, gzip, truncated, wrong-magic and trailing-byte files; batches.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <fstream>
#include <set>

#include "retort/data.h"
#include "retort/error.h"
#include "test_util.h"

using namespace retort;
using retort::testing::TempDir;
using retort::testing::error_of;

namespace {

std::vector<uint8_t> idx_bytes(std::vector<int32_t> dims, uint8_t type = 0x08) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  size_t n = 1;
  for (int32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
    n *= d;
  }
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i % 251));
  return b;
}

void write_file(const std::filesystem::path& p, const std::vector<uint8_t>& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
}

void write_gz(const std::filesystem::path& p, const std::vector<uint8_t>& b) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, b.data(), b.size());
  gzclose(f);
}

}  // namespace

TEST(Idx, ReadsPlainAndGzipFilesIdentically) {
  TempDir tmp;
  auto bytes = idx_bytes({3, 4, 5});
  write_file(tmp / "a.idx", bytes);
  write_gz(tmp / "a.idx.gz", bytes);
  IdxArray plain = read_idx(tmp / "a.idx"), gz = read_idx(tmp / "a.idx.gz");
  EXPECT_EQ(plain.dims, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(plain.data, gz.data);
  EXPECT_EQ(plain.data.size(), 60u);
  EXPECT_EQ(plain.data[59], 59);
}

TEST(Idx, TruncatedFileNamesDeclaredAndFoundSizes) {
  TempDir tmp;
  auto bytes = idx_bytes({10, 4, 4});
  bytes.resize(bytes.size() - 7);
  write_gz(tmp / "t.gz", bytes);
  std::string msg = error_of([&] { read_idx(tmp / "t.gz"); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("160"), std::string::npos) << msg;
  EXPECT_NE(msg.find("153"), std::string::npos) << msg;
}

TEST(Idx, WrongMagicIsRefused) {
  TempDir tmp;
  auto bytes = idx_bytes({4});
  bytes[0] = 0x1f;
  bytes[1] = 0x00;
  write_file(tmp / "m", bytes);
  EXPECT_NE(error_of([&] { read_idx(tmp / "m"); }).find("wrong magic"), std::string::npos);
  write_file(tmp / "text", {'h', 'e', 'l', 'l', 'o', '\n'});
  EXPECT_NE(error_of([&] { read_idx(tmp / "text"); }).find("wrong magic"), std::string::npos);
}

TEST(Idx, UnsupportedTypeTrailingBytesAndMissingFileAreRefused) {
  TempDir tmp;
  write_file(tmp / "f", idx_bytes({2, 2}, 0x0D));
  EXPECT_NE(error_of([&] { read_idx(tmp / "f"); }).find("only unsigned bytes"), std::string::npos);
  auto bytes = idx_bytes({2, 2});
  bytes.push_back(9);
  write_file(tmp / "x", bytes);
  EXPECT_NE(error_of([&] { read_idx(tmp / "x"); }).find("trailing"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(tmp / "nope"); }).find("does not exist"), std::string::npos);
  write_file(tmp / "empty", {});
  EXPECT_NE(error_of([&] { read_idx(tmp / "empty"); }).find("truncated"), std::string::npos);
}

TEST(ImageSetLoad, NormalisesAndChecksImageLabelCounts) {
  TempDir tmp;
  auto images = idx_bytes({6, 2, 3});
  auto labels = idx_bytes({6});
  write_gz(tmp / "train-images-idx3-ubyte.gz", images);
  write_file(tmp / "train-labels-idx1-ubyte", labels);
  ImageSetOptions o{tmp.path().string(), "train", 0, 0.5, 0.25};
  ImageSet s = load_image_set(o);
  EXPECT_EQ(s.images.sizes(), (std::vector<int64_t>{6, 1, 2, 3}));
  EXPECT_NEAR(s.images[0][0][0][1].item<float>(), (1 / 255.0 - 0.5) / 0.25, 1e-6);
  EXPECT_EQ(s.num_classes, 6);
  EXPECT_NEAR(s.black, -2.0, 1e-12);
  o.subset = 4;
  EXPECT_EQ(load_image_set(o).size(), 4);
  write_file(tmp / "train-labels-idx1-ubyte", idx_bytes({5}));
  EXPECT_NE(error_of([&] { load_image_set(o); }).find("6 images but 5 labels"), std::string::npos);
  o.dir = (tmp / "missing").string();
  EXPECT_NE(error_of([&] { load_image_set(o); }).find("is not a folder"), std::string::npos);
}

TEST(Batcher, SameSeedAndEpochGiveSameBatchesAndEpochsDiffer) {
  ImageSet s = retort::testing::tiny_image_set(50);
  Batcher a(s, 8, true, 3), b(s, 8, true, 3);
  EXPECT_EQ(a.batches_per_epoch(), 7);
  EXPECT_TRUE(a.batch(1, 2).index.equal(b.batch(1, 2).index));
  EXPECT_FALSE(a.batch(0, 0).index.equal(a.batch(1, 0).index));
  EXPECT_EQ(a.batch(0, 6).y.size(0), 2);  // the last partial batch is kept
  // Every example appears exactly once per epoch.
  std::vector<torch::Tensor> idx;
  for (int64_t i = 0; i < 7; ++i) idx.push_back(a.batch(4, i).index);
  EXPECT_TRUE(std::get<0>(torch::sort(torch::cat(idx))).equal(torch::arange(50)));
  EXPECT_THROW(Batcher(s, 0, true, 0), Error);
}

TEST(Batcher, AugmentationIsDeterministicAndKeepsShapes) {
  ImageSet s = retort::testing::tiny_image_set(20);
  AugmentOptions aug{2, true};
  Batcher a(s, 5, true, 11, aug, s.black), b(s, 5, true, 11, aug, s.black);
  Batch x = a.batch(2, 1), y = b.batch(2, 1);
  EXPECT_TRUE(x.augmented);
  EXPECT_TRUE(x.x.equal(y.x));
  EXPECT_EQ(x.x.sizes(), (std::vector<int64_t>{5, 1, 8, 8}));
  EXPECT_FALSE(x.x.equal(s.images.index_select(0, x.index)));  // something moved
}

TEST(Batcher, FixedViewsAreTheSamePicturesInEveryRunAndSeed) {
  ImageSet s = retort::testing::tiny_image_set(30);
  AugmentOptions aug{2, true, /*views=*/3};
  Batcher a(s, 10, true, 11, aug, s.black), b(s, 10, true, 12, aug, s.black);
  std::set<int64_t> seen;
  for (int64_t e = 0; e < 6; ++e)
    for (Batcher* src : {&a, &b})
      for (int64_t k = 0; k < src->batches_per_epoch(); ++k) {
        Batch x = src->batch(e, k);
        ASSERT_TRUE(x.view.defined());
        EXPECT_FALSE(x.augmented);  // a cache can answer it
        EXPECT_GE(x.view.min().item<int64_t>(), 0);
        EXPECT_LT(x.view.max().item<int64_t>(), 3);
        // the picture is a function of (example, view) alone: recomputed, it is the same
        EXPECT_TRUE(x.x.equal(fixed_views(s, x.index, x.view, aug)));
        for (int64_t i = 0; i < x.view.size(0); ++i) seen.insert(x.view[i].item<int64_t>());
      }
  EXPECT_EQ(seen.size(), 3u);  // every view is used
  // different views of one image differ (crop and flip moved something), equal views agree
  torch::Tensor idx = torch::zeros({3}, torch::kInt64), views = torch::arange(3, torch::kInt64);
  torch::Tensor v = fixed_views(s, idx, views, aug);
  EXPECT_FALSE(v[0].equal(v[1]) && v[1].equal(v[2]));
  EXPECT_TRUE(fixed_views(s, idx, views, aug).equal(v));
  // the view of an example in an epoch depends on the run's seed: two seeds do not walk in step
  EXPECT_FALSE(a.batch(0, 0).view.equal(b.batch(0, 0).view) && a.batch(1, 0).view.equal(b.batch(1, 0).view));
}

TEST(Batcher, ViewsWithoutAnAugmentationAreRefused) {
  ImageSet s = retort::testing::tiny_image_set(10);
  try {
    Batcher bad(s, 5, true, 1, AugmentOptions{0, false, 4}, s.black);
    FAIL() << "views without crop or flip was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("train.crop_padding or train.hflip"), std::string::npos) << e.what();
  }
}
