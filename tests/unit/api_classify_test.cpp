// The openai: classifier teacher against a real `retort serve` in-process (serve_fixture.h's
// server, serving a tiny mlp and a tiny gpt): the harvested log-probabilities equal the served
// model's own log_softmax on the same pixels, a budget-stopped harvest keeps its whole shards and
// a rerun asks only for the rest, and a classifier of another shape or a language model is a
// clear Error before any image is sent.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "retort/api_classify_teacher.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "serve_fixture.h"
#include "teachers/api_answers.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::RunningServer;
using retort::testing::TempDir;

namespace {

constexpr double kMean = 0.5, kStd = 0.25;  // the data's normalisation: not the server's (defaults)

// A server with the classifier "c" (an mlp on (1, 8, 8) images, 4 classes) and the language
// model "m"; `engine` keeps the served models to compare against.
struct ClassifierServer {
  TempDir dir;
  std::shared_ptr<Engine> engine;
  std::unique_ptr<RunningServer> running;

  ClassifierServer() {
    torch::manual_seed(11);
    ModelSpec spec{"mlp",
                   {{"in_channels", 1},
                    {"height", 8},
                    {"width", 8},
                    {"num_classes", 4},
                    {"hidden", nlohmann::json::array({16})},
                    {"dropout", 0.0}}};
    ModelPtr model = make_model(spec);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.mul_(2);  // probabilities far from uniform
    }
    save_model(*model, spec, dir / "clf");
    engine = std::make_shared<Engine>(
        std::vector<std::pair<std::string, std::string>>{{"c", (dir / "clf").string()},
                                                         {"m", retort::testing::save_tiny_lm(dir)}},
        "cpu");
    running = std::make_unique<RunningServer>();
    ServeOptions o;
    o.port = 0;
    o.db = running->db = (dir / "serve.db").string();
    {
      KeyStore keys(std::make_shared<GuardDb>(o.db));
      running->key = keys.create("test", {}).second;
    }
    running->server = std::make_unique<Server>(engine, o);
    if (!running->server->bind()) throw Error("the test server cannot bind a loopback port");
    running->thread = std::thread([s = running->server.get()] { s->listen_after_bind(); });
  }

  ApiEndpoint endpoint(const std::string& model = "c") const {
    ApiEndpoint e;
    e.base_url = cat("http://127.0.0.1:", running->server->port(), "/v1");
    e.model = model;
    e.api_key = running->key;
    e.concurrency = 1;  // requests in order: the budget stops at a known image
    e.max_retries = 0;
    e.timeout = 30;
    e.batch = 8;
    return e;
  }
};

// n images (1, 8, 8) of whole pixel values, normalised with kMean / kStd as load_image_set does.
ImageSet pixel_images(int64_t n, int64_t classes = 4, int64_t side = 8) {
  torch::manual_seed(3);
  ImageSet s;
  torch::Tensor bytes = torch::randint(0, 256, {n, 1, side, side}, torch::kUInt8);
  s.images = ((bytes.to(torch::kFloat32) / 255.0 - kMean) / kStd).contiguous();
  s.labels = torch::arange(n, torch::kInt64).remainder(classes);
  s.num_classes = classes;
  s.black = -kMean / kStd;
  s.source = "test pixels";
  return s;
}

ClassifyHarvestOptions options(int64_t per_shard = 16) {
  ClassifyHarvestOptions o;
  o.mean = kMean;
  o.std = kStd;
  o.images_per_shard = per_shard;
  return o;
}

// What the served model itself says about the images, computed here as the engine normalises:
// log_softmax of its logits on (pixel / 255 - mean) / std with the server's own mean and std.
torch::Tensor served_log_softmax(const ServedModel& m, const ImageSet& set) {
  torch::Tensor pixels = ((set.images.to(torch::kFloat64) * kStd + kMean) * 255.0).round();
  torch::Tensor x = ((pixels / 255.0 - m.mean) / m.std).to(torch::kFloat32);
  torch::NoGradGuard no_grad;
  return torch::log_softmax(m.model->forward(x).logits.to(torch::kFloat64), -1);
}

int64_t files_in(const fs::path& dir) {
  if (!fs::is_directory(dir)) return 0;
  int64_t n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) n += entry.is_regular_file();
  return n;
}

TEST(ApiClassify, HarvestEqualsTheServedModelsLogSoftmaxAndIsCached) {
  ClassifierServer server;
  TempDir cache;
  const ImageSet set = pixel_images(50);
  ApiClient client(server.endpoint());
  CacheStatus status;
  torch::Tensor got = harvest_classifier_log_probs(client, set, options(), cache.path(), &status);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{50, 4}));
  const torch::Tensor want =
      served_log_softmax(server.engine->model("c"), set).clamp_min(std::log(1e-12));
  const double diff = (got.to(torch::kFloat64) - want).abs().max().item<double>();
  EXPECT_LT(diff, 1e-5) << "harvested vs served log_softmax";
  std::printf("max |harvested - served log_softmax| = %.3g over %lld values\n", diff,
              (long long)want.numel());
  EXPECT_LT(want.amax(-1).min().item<double>(), -0.01) << "the test wants some uncertain images";
  EXPECT_GT((want.amax(-1) - want.amin(-1)).max().item<double>(), 1.0)
      << "and no uniform ones only";
  // 1 GET models + shards of 16 images at 8 per request: 2 + 2 + 2 + 1
  EXPECT_EQ(client.requests(), 1 + 7);
  EXPECT_EQ(client.tokens(), 50) << "a classifier's token is one image";
  EXPECT_FALSE(status.hit);
  EXPECT_TRUE(fs::is_regular_file(status.path)) << status.path;
  EXPECT_EQ(fs::path(status.path).filename().string().rfind("logits-", 0), 0u) << status.path;
  EXPECT_FALSE(fs::exists(fs::path(status.path).replace_extension(".parts")))
      << "parts joined and removed";

  ApiClient again(server.endpoint());
  CacheStatus second;
  torch::Tensor cached = harvest_classifier_log_probs(again, set, options(), cache.path(), &second);
  EXPECT_TRUE(second.hit);
  EXPECT_EQ(again.requests(), 0) << "a whole cache asks nothing";
  EXPECT_TRUE(torch::equal(cached, got));

  // As a teacher: rows by index; an augmented batch was never asked about.
  ApiClassifierTeacher teacher(got, "api");
  Batch b;
  b.index = torch::tensor({3, 0, 49}, torch::kInt64);
  TeacherSignal s = teacher.signal(b);
  EXPECT_TRUE(torch::equal(s.logits, got.index_select(0, b.index)));
  b.augmented = true;
  EXPECT_NE(error_of([&] { teacher.signal(b); }).find("augmented"), std::string::npos);
}

TEST(ApiClassify, BudgetStopsKeepingWholeShardsAndARerunAsksOnlyForTheRest) {
  ClassifierServer server;
  TempDir cache, reference_cache;
  const ImageSet set = pixel_images(50);
  ApiClient full(server.endpoint());
  const torch::Tensor want =
      harvest_classifier_log_probs(full, set, options(), reference_cache.path());

  ApiEndpoint limited = server.endpoint();
  limited.max_requests = 4;  // GET models, then shard 0 (2 requests) and half of shard 1
  ApiClient first(limited);
  std::string message;
  try {
    harvest_classifier_log_probs(first, set, options(), cache.path());
    ADD_FAILURE() << "the budget did not stop the harvest";
  } catch (const BudgetExhausted& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("teacher.api_max_requests = 4"), std::string::npos) << message;
  EXPECT_NE(message.find("1 of 4 shards"), std::string::npos) << message;
  EXPECT_EQ(first.requests(), 4);
  fs::path parts;
  for (const auto& entry : fs::directory_iterator(cache.path())) parts = entry.path();
  EXPECT_EQ(parts.extension(), ".parts") << "only the parts folder, no cache file yet: " << parts;
  EXPECT_NE(message.find(parts.string()), std::string::npos) << message;
  EXPECT_EQ(files_in(parts), 1) << "shard 0 whole on disk, shard 1 not written at all";
  // What a kill -9 during a shard's write leaves: a temporary of a writer that is gone.
  const fs::path orphan = parts / ".shard-00001.bin.tmp999999999-1";
  atomic_write_text(orphan, "half a shard");
  fs::last_write_time(orphan, fs::file_time_type::clock::now() - std::chrono::hours(1));

  ApiClient rerun(server.endpoint());
  CacheStatus status;
  torch::Tensor got = harvest_classifier_log_probs(rerun, set, options(), cache.path(), &status);
  // GET models + shards 1, 2, 3 (2 + 2 + 1 requests): shard 0 is not asked again
  EXPECT_EQ(rerun.requests(), 1 + 5);
  EXPECT_EQ(rerun.tokens(), 50 - 16);
  EXPECT_TRUE(torch::equal(got, want)) << "resumed harvest equals an uninterrupted one";
  EXPECT_FALSE(fs::exists(parts)) << "parts (and the orphan) gone once joined";
  EXPECT_TRUE(fs::is_regular_file(status.path));

  // A damaged shard is asked for again, never trusted.
  TempDir damaged;
  ApiEndpoint limited2 = server.endpoint();
  limited2.max_requests = 5;  // GET models + shards 0 and 1
  ApiClient stop(limited2);
  EXPECT_THROW(harvest_classifier_log_probs(stop, set, options(), damaged.path()), BudgetExhausted);
  fs::path parts2 = damaged.path() / parts.filename();
  ASSERT_EQ(files_in(parts2), 2);
  atomic_write_text(parts2 / "shard-00000.bin", "RTCACHE1 not a shard");
  ApiClient rerun2(server.endpoint());
  EXPECT_TRUE(
      torch::equal(harvest_classifier_log_probs(rerun2, set, options(), damaged.path()), want));
  EXPECT_EQ(rerun2.requests(), 1 + 2 + 2 + 1) << "shard 0 again, shard 1 kept, shards 2 and 3";
}

TEST(ApiClassify, TokenBudgetCountsImages) {
  ClassifierServer server;
  TempDir cache;
  ApiEndpoint limited = server.endpoint();
  limited.max_tokens = 20;  // checked before each request: stops after the third batch of 8
  ApiClient client(limited);
  std::string e = error_of(
      [&] { harvest_classifier_log_probs(client, pixel_images(50), options(), cache.path()); });
  EXPECT_NE(e.find("teacher.api_max_tokens = 20"), std::string::npos) << e;
  EXPECT_EQ(client.tokens(), 24);
  EXPECT_NE(e.find("1 of 4 shards"), std::string::npos) << e;
}

TEST(ApiClassify, AnotherShapeOrALanguageModelIsAClearErrorBeforeAnyImage) {
  ClassifierServer server;
  TempDir cache;
  {
    ApiClient client(server.endpoint());
    std::string e = error_of([&] {
      harvest_classifier_log_probs(client, pixel_images(20, 5), options(), cache.path());
    });
    EXPECT_NE(e.find("takes images 1x8x8 and predicts 4 classes"), std::string::npos) << e;
    EXPECT_NE(e.find("has images 1x8x8 in 5 classes"), std::string::npos) << e;
    EXPECT_EQ(client.requests(), 1) << "only GET models";
  }
  {
    ApiClient client(server.endpoint());
    std::string e = error_of([&] {
      harvest_classifier_log_probs(client, pixel_images(20, 4, 6), options(), cache.path());
    });
    EXPECT_NE(e.find("takes images 1x8x8"), std::string::npos) << e;
    EXPECT_NE(e.find("has images 1x6x6"), std::string::npos) << e;
    EXPECT_EQ(client.requests(), 1);
  }
  {
    ApiClient client(server.endpoint("m"));
    std::string e = error_of(
        [&] { harvest_classifier_log_probs(client, pixel_images(20), options(), cache.path()); });
    EXPECT_NE(e.find("is a language model, not an image classifier"), std::string::npos) << e;
    EXPECT_EQ(client.requests(), 1);
  }
  {
    ApiClient client(server.endpoint("nosuch"));
    std::string e = error_of(
        [&] { harvest_classifier_log_probs(client, pixel_images(20), options(), cache.path()); });
    EXPECT_NE(e.find("lists no model 'nosuch'"), std::string::npos) << e;
  }
  {
    // The language-model side refuses the classifier the same way (data.kind = text).
    ApiClient client(server.endpoint());
    std::string e = error_of([&] { fetch_api_tokenizer(client); });
    EXPECT_NE(e.find("is an image classifier, not a language model"), std::string::npos) << e;
  }
  {
    // Images normalised with another data.mean / data.std than the harvest is told.
    ApiClient client(server.endpoint());
    ClassifyHarvestOptions wrong = options();
    wrong.mean = 0.2860;
    std::string e = error_of(
        [&] { harvest_classifier_log_probs(client, pixel_images(20), wrong, cache.path()); });
    EXPECT_NE(e.find("whole pixel values"), std::string::npos) << e;
    EXPECT_EQ(client.requests(), 0);
  }
}

TEST(ApiClassify, AnswersThatAreNotProbabilitiesAreRefused) {
  using json = nlohmann::json;
  std::vector<float> out(2 * 3);
  auto read = [&](const json& answer) {
    return error_of([&] { read_classify_answer(answer, 2, 3, "test", out.data()); });
  };
  // Items placed by their index; p = 0 is floored at 1e-12.
  EXPECT_EQ(read(json::parse(R"({"data": [{"index": 1, "probabilities": [0.5, 0.5, 0]},
                                          {"index": 0, "probabilities": [0.25, 0.25, 0.5]}]})")),
            "(no error)");
  EXPECT_FLOAT_EQ(out[0], std::log(0.25f));
  EXPECT_FLOAT_EQ(out[2], std::log(0.5f));
  EXPECT_FLOAT_EQ(out[5], float(std::log(1e-12)));
  EXPECT_NE(read(json::parse(R"({"data": [{"probabilities": [1, 0, 0]}]})"))
                .find("2 images sent, 1 answered"),
            std::string::npos);
  EXPECT_NE(read(json::parse(R"({"data": [{"top": []}, {"top": []}]})"))
                .find("without \"probabilities\""),
            std::string::npos);
  EXPECT_NE(read(json::parse(R"({"data": [{"probabilities": [1, 0]}, {"probabilities": [1, 0]}]})"))
                .find("2 class probabilities; the data has 3"),
            std::string::npos);
  EXPECT_NE(
      read(json::parse(
               R"({"data": [{"probabilities": [2.5, -1, 0]}, {"probabilities": [1, 0, 0]}]})"))
          .find("probability 2.5"),
      std::string::npos);
  EXPECT_NE(
      read(json::parse(
               R"({"data": [{"probabilities": [0.5, 0.2, 0]}, {"probabilities": [1, 0, 0]}]})"))
          .find("sum to 0.7"),
      std::string::npos);
  EXPECT_NE(read(json::parse(R"({"data": [{"index": 0, "probabilities": [1, 0, 0]},
                                          {"index": 0, "probabilities": [1, 0, 0]}]})"))
                .find("answered twice"),
            std::string::npos);
}

}  // namespace
