// The sharded top-k cache: round trips, both id widths, resuming, and refusing damaged shards.
#include "retort/topk_cache.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <string>

#include "retort/error.h"
#include "retort/fs.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;

namespace {

// A teacher's top-k of random logits for `windows` windows: ids (W, L, k), logprobs (W, L, k).
std::pair<torch::Tensor, torch::Tensor> fake_top_k(const TopkCacheInfo& info, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor logits = torch::randn({info.windows, info.seq_len, info.vocab_size}) * 3;
  TeacherSignal sig = top_k_signal(logits, info.k);
  return {sig.ids, sig.logprobs};
}

void write_shards(TopkCacheWriter& w, const torch::Tensor& ids, const torch::Tensor& lp,
                  const std::vector<int64_t>& shards) {
  for (int64_t s : shards) {
    auto [first, last] = w.shard_windows(s);
    w.write_shard(s, ids.slice(0, first, last), lp.slice(0, first, last));
  }
}

TopkCacheInfo small_info(int64_t vocab = 50) {
  TopkCacheInfo info;
  info.key = "teacher-abc/data-123";
  info.k = 4;
  info.seq_len = 6;
  info.windows = 10;
  info.vocab_size = vocab;
  info.windows_per_shard = 3;  // shards of 3, 3, 3, 1 windows
  return info;
}

void flip_byte(const std::filesystem::path& path, int64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c ^= 0x5a;
  f.seekp(at);
  f.write(&c, 1);
}

}  // namespace

TEST(TopkCache, RoundTripKeepsIdsExactLogprobsToFp16AndTheTailConsistent) {
  TempDir dir;
  TopkCacheInfo info = small_info();
  auto [ids, lp] = fake_top_k(info, 1);
  TopkCacheWriter w(dir.path(), info);
  EXPECT_EQ(w.missing_shards(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(w.shard_windows(3), (std::pair<int64_t, int64_t>{9, 10}));
  write_shards(w, ids, lp, {0, 1, 2, 3});
  EXPECT_TRUE(w.complete());

  TopkCache cache = TopkCache::open(dir.path(), info.key);
  torch::Tensor which = torch::tensor({9, 0, 4, 4, 2}, torch::kInt64);
  TeacherSignal sig = cache.rows(which);
  EXPECT_EQ(sig.kind, TeacherSignal::Kind::TopK);
  EXPECT_EQ(sig.ids.sizes(), (std::vector<int64_t>{5, 6, 4}));
  EXPECT_EQ(sig.ids.scalar_type(), torch::kInt64);
  EXPECT_EQ(sig.logprobs.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(sig.ids.equal(ids.index_select(0, which)));
  torch::Tensor want = lp.index_select(0, which);
  // fp16 keeps 11 significant bits: relative error <= 2^-11.
  EXPECT_LE((sig.logprobs - want).abs().max().item<double>(),
            want.abs().max().item<double>() * std::pow(2.0, -11));
  torch::Tensor mass = sig.logprobs.exp().sum(-1);
  EXPECT_LE(mass.max().item<double>(), 1.0 + 1e-3);
  EXPECT_LT((mass - want.exp().sum(-1)).abs().max().item<double>(), 2e-3);
}

TEST(TopkCache, IdsAboveInt16AndAboveUint16RoundTripExactly) {
  for (int64_t vocab : {int64_t{65536}, int64_t{70000}}) {
    TempDir dir;
    TopkCacheInfo info = small_info(vocab);
    info.windows = 2;
    info.windows_per_shard = 2;
    torch::Tensor ids = torch::randint(0, vocab, {2, 6, 4}, torch::kInt64);
    ids[0][0][0] = vocab - 1;
    ids[0][0][1] = 32768;
    ids[0][0][2] = 0;
    torch::Tensor lp = -torch::rand({2, 6, 4}) * 5;
    TopkCacheWriter w(dir.path(), info);
    w.write_shard(0, ids, lp);
    TopkCache cache = TopkCache::open(dir.path(), info.key);
    EXPECT_TRUE(cache.rows(torch::tensor({0, 1}, torch::kInt64)).ids.equal(ids))
        << "vocab " << vocab;
    int64_t id_bytes = vocab <= 65536 ? 2 : 4;
    EXPECT_EQ(info.id_bytes(), id_bytes);
    EXPECT_EQ(std::filesystem::file_size(dir / "shard-00000.bin"), 2u * 6 * 4 * (id_bytes + 2));
    EXPECT_NE(read_text(dir / "meta.json").find(id_bytes == 2 ? "\"uint16\"" : "\"int32\""),
              std::string::npos);
  }
}

TEST(TopkCache, WriterOnTheSameKeyResumesWithTheMissingShards) {
  TempDir dir;
  TopkCacheInfo info = small_info();
  auto [ids, lp] = fake_top_k(info, 2);
  {
    TopkCacheWriter w(dir.path(), info);
    write_shards(w, ids, lp, {0, 2});
    EXPECT_FALSE(w.complete());
  }  // killed here
  EXPECT_NE(
      error_of([&] { TopkCache::open(dir.path(), info.key); }).find("unfinished: 2 of 4 shards"),
      std::string::npos);
  TopkCacheWriter again(dir.path(), info);
  EXPECT_EQ(again.missing_shards(), (std::vector<int64_t>{1, 3}));
  write_shards(again, ids, lp, again.missing_shards());
  TopkCache cache = TopkCache::open(dir.path(), info.key);
  EXPECT_TRUE(cache.rows(torch::arange(10)).ids.equal(ids));
}

TEST(TopkCache, FlippedByteIsRefusedNamingTheShardAndBothChecksumsAndRebuilt) {
  TempDir dir;
  TopkCacheInfo info = small_info();
  auto [ids, lp] = fake_top_k(info, 3);
  TopkCacheWriter w(dir.path(), info);
  write_shards(w, ids, lp, w.missing_shards());
  flip_byte(dir / "shard-00001.bin", 17);

  TopkCache cache = TopkCache::open(dir.path(), info.key);            // sizes are right
  EXPECT_NO_THROW(cache.rows(torch::tensor({0, 8}, torch::kInt64)));  // shards 0 and 2 are fine
  std::string e = error_of([&] { cache.rows(torch::tensor({4}, torch::kInt64)); });
  EXPECT_NE(e.find("shard-00001.bin is corrupt"), std::string::npos) << e;
  EXPECT_NE(e.find("with checksum"), std::string::npos) << e;
  EXPECT_NE(e.find("meta.json says"), std::string::npos) << e;

  TopkCacheWriter repair(dir.path(), info);
  EXPECT_EQ(repair.missing_shards(), (std::vector<int64_t>{1}));
  write_shards(repair, ids, lp, {1});
  EXPECT_TRUE(TopkCache::open(dir.path(), info.key).rows(torch::arange(10)).ids.equal(ids));
}

TEST(TopkCache, TruncatedShardIsRefusedWhenOpened) {
  TempDir dir;
  TopkCacheInfo info = small_info();
  auto [ids, lp] = fake_top_k(info, 4);
  TopkCacheWriter w(dir.path(), info);
  write_shards(w, ids, lp, w.missing_shards());
  std::filesystem::resize_file(dir / "shard-00002.bin", 100);
  std::string e = error_of([&] { TopkCache::open(dir.path(), info.key); });
  EXPECT_NE(e.find("shard-00002.bin has the wrong size (truncated?): 100 bytes with checksum"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("meta.json says 288 bytes with checksum"), std::string::npos) << e;
  EXPECT_EQ(TopkCacheWriter(dir.path(), info).missing_shards(), (std::vector<int64_t>{2}));
}

TEST(TopkCache, AnotherKeyIsRefusedByTheReaderAndClearedByTheWriter) {
  TempDir dir;
  TopkCacheInfo info = small_info();
  auto [ids, lp] = fake_top_k(info, 5);
  {
    TopkCacheWriter w(dir.path(), info);
    write_shards(w, ids, lp, w.missing_shards());
  }
  { std::ofstream(dir / "notes.txt") << "not ours"; }
  EXPECT_EQ(
      error_of([&] { TopkCache::open(dir.path(), "other-key"); }),
      "top-k cache " + dir.path().string() + " holds key teacher-abc/data-123, expected other-key");
  EXPECT_EQ(error_of([&] { TopkCache::open(dir / "nowhere", "k"); }),
            "no top-k cache in " + (dir / "nowhere").string() + ": " +
                (dir / "nowhere" / "meta.json").string() + " is missing");
  TopkCacheInfo other = info;
  other.key = "other-key";
  TopkCacheWriter w(dir.path(), other);
  EXPECT_EQ(w.missing_shards().size(), 4u);
  EXPECT_FALSE(std::filesystem::exists(dir / "shard-00000.bin"));
  EXPECT_TRUE(std::filesystem::exists(dir / "notes.txt"));  // only the cache's own files go
  // The same key with another shape is another cache too.
  TopkCacheInfo wider = other;
  wider.k = 5;
  write_shards(w, ids, lp, {0});
  EXPECT_EQ(TopkCacheWriter(dir.path(), wider).missing_shards().size(), 4u);
}

TEST(TopkCache, RefusesBadShardsAndWindows) {
  TempDir dir;
  TopkCacheInfo info = small_info();
  TopkCacheWriter w(dir.path(), info);
  torch::Tensor ids = torch::zeros({3, 6, 4}, torch::kInt64), lp = torch::zeros({3, 6, 4});
  EXPECT_EQ(error_of([&] { w.write_shard(3, ids, lp); }),
            "top-k cache: shard 3 needs ids and logprobs of shape [1, 6, 4], got [3, 6, 4] and [3, "
            "6, 4]");
  EXPECT_EQ(error_of([&] { w.write_shard(4, ids, lp); }),
            "top-k cache: shard 4 is out of range; the cache has 4 shards");
  torch::Tensor big = ids.clone();
  big[1][2][3] = 50;
  EXPECT_EQ(error_of([&] { w.write_shard(0, big, lp); }),
            "top-k cache: shard 0 has ids from 0 to 50; they must lie in [0, 50)");
  write_shards(w, torch::zeros({10, 6, 4}, torch::kInt64), torch::zeros({10, 6, 4}), {0, 1, 2});
  w.write_shard(3, ids.slice(0, 0, 1), lp.slice(0, 0, 1));
  EXPECT_EQ(error_of([&] {
              TopkCache::open(dir.path(), info.key).rows(torch::tensor({10}, torch::kInt64));
            }),
            "top-k cache: window 10 is out of range; the cache has 10 windows");
}

TEST(TopkCache, BytesPerTokenIsFourPerKeptTokenPlusMeta) {
  for (int64_t k : {1, 5, 20}) {
    TempDir dir;
    TopkCacheInfo info;
    info.key = "bpt";
    info.k = k;
    info.seq_len = 128;
    info.windows = 64;
    info.vocab_size = 2048;
    info.windows_per_shard = 16;
    auto [ids, lp] = fake_top_k(info, 6);
    TopkCacheWriter w(dir.path(), info);
    write_shards(w, ids, lp, w.missing_shards());
    TopkCache cache = TopkCache::open(dir.path(), info.key);
    int64_t tokens = info.windows * info.seq_len;
    int64_t meta = static_cast<int64_t>(std::filesystem::file_size(dir / "meta.json"));
    EXPECT_EQ(cache.bytes(), tokens * k * 4 + meta);
    EXPECT_NEAR(cache.bytes_per_token(), k * 4.0 + double(meta) / tokens, 1e-9);
    EXPECT_LT(cache.bytes_per_token(), k * 4.0 + 0.2) << "k=" << k;
    std::printf("[ bytes/token ] k=%lld vocab 2048: %.3f (%lld tokens, meta.json %lld bytes)\n",
                static_cast<long long>(k), cache.bytes_per_token(), static_cast<long long>(tokens),
                static_cast<long long>(meta));
  }
}
