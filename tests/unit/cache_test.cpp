// Teacher cache: built once, hit afterwards, keyed by teacher and data, corruption rebuilt.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "retort/teacher.h"
#include "test_util.h"

using namespace retort;
using retort::testing::TempDir;

namespace {
std::shared_ptr<ModelTeacher> teacher(uint64_t seed) {
  torch::manual_seed(seed);
  return std::make_shared<ModelTeacher>(
      make_model({"mlp", {{"in_channels", 1}, {"height", 8}, {"width", 8}, {"num_classes", 4}, {"hidden", {8}}}}));
}
}  // namespace

TEST(LogitCache, BuildsOnceThenHitsWithIdenticalLogits) {
  TempDir tmp;
  ImageSet data = retort::testing::tiny_image_set(40);
  auto t = teacher(1);
  CacheStatus first, second;
  torch::Tensor a = load_or_build_logit_cache(*t, data, tmp.path(), &first);
  torch::Tensor b = load_or_build_logit_cache(*t, data, tmp.path(), &second);
  EXPECT_FALSE(first.hit);
  EXPECT_TRUE(second.hit);
  EXPECT_EQ(first.path, second.path);
  EXPECT_TRUE(a.equal(b));
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{40, 4}));
  EXPECT_TRUE(a.allclose(t->logits_for(data)));
}

TEST(LogitCache, KeyChangesWithTeacherAndData) {
  TempDir tmp;
  ImageSet data = retort::testing::tiny_image_set(40), other = retort::testing::tiny_image_set(40, 99);
  CacheStatus s1, s2, s3;
  load_or_build_logit_cache(*teacher(1), data, tmp.path(), &s1);
  load_or_build_logit_cache(*teacher(2), data, tmp.path(), &s2);
  load_or_build_logit_cache(*teacher(1), other, tmp.path(), &s3);
  EXPECT_NE(s1.path, s2.path);
  EXPECT_NE(s1.path, s3.path);
  EXPECT_FALSE(s2.hit);
  EXPECT_FALSE(s3.hit);
}

TEST(LogitCache, CorruptOrTruncatedFileIsRebuiltNotTrusted) {
  TempDir tmp;
  ImageSet data = retort::testing::tiny_image_set(40);
  auto t = teacher(1);
  CacheStatus s;
  torch::Tensor good = load_or_build_logit_cache(*t, data, tmp.path(), &s);
  {
    std::fstream f(s.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  CacheStatus again;
  EXPECT_TRUE(load_or_build_logit_cache(*t, data, tmp.path(), &again).equal(good));
  EXPECT_FALSE(again.hit);
  std::filesystem::resize_file(s.path, 100);
  EXPECT_TRUE(load_or_build_logit_cache(*t, data, tmp.path(), &again).equal(good));
  EXPECT_FALSE(again.hit);
  EXPECT_TRUE(load_or_build_logit_cache(*t, data, tmp.path(), &again).equal(good));
  EXPECT_TRUE(again.hit);
}

TEST(CachedTeacher, ServesRowsForPlainBatchesAndAsksTheModelForAugmentedOnes) {
  ImageSet data = retort::testing::tiny_image_set(30);
  auto t = teacher(3);
  torch::Tensor table = t->logits_for(data);
  CachedTeacher cached(t, table);
  Batcher plain(data, 10, true, 1), aug(data, 10, true, 1, AugmentOptions{1, true}, data.black);
  Batch b = plain.batch(0, 1);
  EXPECT_TRUE(cached.signal(b).logits.equal(table.index_select(0, b.index)));
  Batch a = aug.batch(0, 1);
  EXPECT_TRUE(cached.signal(a).logits.allclose(t->signal(a).logits));
  EXPECT_EQ(cached.hits(), 1);
  EXPECT_EQ(cached.misses(), 1);
}

TEST(LogitCache, ViewsCacheTheTeachersAnswerToEachFixedView) {
  TempDir tmp;
  ImageSet data = retort::testing::tiny_image_set(24);
  auto t = teacher(3);
  AugmentOptions aug{1, true, /*views=*/2};
  CacheStatus plain, viewed, again;
  load_or_build_logit_cache(*t, data, tmp.path(), &plain);
  torch::Tensor table = load_or_build_logit_cache(*t, data, tmp.path(), &viewed, aug);
  EXPECT_NE(plain.path, viewed.path);  // another key: other pictures
  EXPECT_FALSE(viewed.hit);
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{48, 4}));
  EXPECT_TRUE(load_or_build_logit_cache(*t, data, tmp.path(), &again, aug).equal(table));
  EXPECT_TRUE(again.hit);
  // the cached teacher answers a batch of views exactly as the live teacher answers those pictures
  Batcher batches(data, 8, true, 5, aug, data.black);
  CachedTeacher cached(t, table, 2);
  for (int64_t e = 0; e < 2; ++e)
    for (int64_t b = 0; b < batches.batches_per_epoch(); ++b) {
      Batch x = batches.batch(e, b);
      EXPECT_TRUE(cached.signal(x).logits.allclose(t->logits(x.x), 1e-5, 1e-6));
    }
  EXPECT_EQ(cached.hits(), 2 * batches.batches_per_epoch());
  EXPECT_EQ(cached.misses(), 0);
}
