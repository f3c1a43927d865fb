// The openai: classifier teacher (retort/api_classify_teacher.h): the training images sent as
// pixel values through /classify, the answers kept shard by shard as they complete, then joined
// into one dense logit cache file. The client (retries, budget) is api_client.cpp; what an answer
// must hold, api_answers.cpp; the file format, logit_cache_file.cpp.
#include "retort/api_classify_teacher.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <regex>
#include <vector>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/progress.h"
#include "teachers/api_answers.h"
#include "teachers/api_work.h"
#include "teachers/logit_cache_file.h"

namespace retort {

namespace {

std::string image_shape_text(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "of unknown shape";
  std::string s;
  for (int64_t d : shape) s += cat(s.empty() ? "" : "x", d);
  return s;
}

// The pixel values the set's images were normalised from: (N, C*H*W) uint8. Values that do not
// come back whole (to 0.01) and within [0, 255] mean another normalisation than `mean`/`std`.
torch::Tensor pixel_values(const ImageSet& set, double mean, double std) {
  const int64_t n = set.size(), chunk = 4096;
  torch::Tensor flat = set.images.to(torch::kCPU).reshape({n, -1});
  torch::Tensor out = torch::empty(flat.sizes(), torch::kUInt8);
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t len = std::min(chunk, n - first);
    torch::Tensor v = (flat.narrow(0, first, len).to(torch::kFloat64) * std + mean) * 255.0;
    torch::Tensor r = v.round();
    torch::Tensor bad = (v - r).abs().gt(0.01).logical_or(r.lt(0)).logical_or(r.gt(255));
    if (bad.any().item<bool>()) {
      const int64_t at = bad.reshape({-1}).nonzero()[0].item<int64_t>();
      const int64_t row = at / v.size(1), col = at % v.size(1);
      fail("the images of ", set.source,
           " do not come from whole pixel values 0..255 with data.mean = ", mean,
           " and data.std = ", std, ": image ", first + row, " value ", col, " is ",
           flat[first + row][col].item<double>(), ", pixel value ", v[row][col].item<double>(),
           "; a classifier API is sent the pixel values themselves, so data.mean / data.std "
           "must be the ones the images were loaded with");
    }
    out.narrow(0, first, len).copy_(r.to(torch::kUInt8));
  }
  return out.contiguous();
}

std::string shard_name(int64_t s) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%05lld.bin", static_cast<long long>(s));
  return name;
}

}  // namespace

// ---- the endpoint's model ------------------------------------------------------------------

void check_api_classifier(ApiClient& client, const ImageSet& set) {
  const ApiEndpoint& e = client.endpoint();
  const nlohmann::json entry = api_model_entry(client);
  if (entry.is_null())
    fail("the endpoint ", e.base_url, " lists no model '", e.model, "' (GET ", e.base_url,
         "/models); check --teacher-model / teacher.api_model");
  const ServedModelShape served = entry_model_shape(entry);
  const std::vector<int64_t> ours = set.images.sizes().slice(1).vec();
  if (served.kind.empty()) {
    std::fprintf(stderr,
                 "warning: the endpoint's model %s does not describe its input shape and classes "
                 "(retort serve's GET models does); each answer's class count is checked instead\n",
                 e.model.c_str());
    return;
  }
  if (served.kind != "classifier")
    fail("the endpoint's model ", e.model, " at ", e.base_url, " is a ",
         served.kind == "language_model" ? "language model" : served.kind,
         ", not an image classifier: data.kind = images needs a classifier served on /classify "
         "(a language model is distilled with data.kind = text)");
  if (served.input_shape != ours || served.classes != set.num_classes)
    fail("the endpoint's classifier ", e.model, " at ", e.base_url, " takes images ",
         image_shape_text(served.input_shape), " and predicts ", served.classes,
         " classes, but the data (", set.source, ") has images ", image_shape_text(ours), " in ",
         set.num_classes, " classes");
}

// ---- the harvest ---------------------------------------------------------------------------

torch::Tensor harvest_classifier_log_probs(ApiClient& client, const ImageSet& set,
                                           const ClassifyHarvestOptions& o,
                                           const fs::path& cache_dir, CacheStatus* status) {
  const auto start = std::chrono::steady_clock::now();
  const ApiEndpoint& e = client.endpoint();
  const int64_t n = set.size(), classes = set.num_classes;
  if (n < 1 || classes < 1) fail("no images to ask ", e.base_url, " about (", set.source, ")");
  const torch::Tensor pixels = pixel_values(set, o.mean, o.std);  // (N, D) uint8
  const int64_t d = pixels.size(1);
  const uint8_t* px = pixels.data_ptr<uint8_t>();

  // The key: what is asked (endpoint, model, every pixel sent) and the table's shape.
  Hasher hash;
  hash.update(cat("openai classify\n", e.base_url, "\n", e.model, "\n",
                  image_shape_text(set.images.sizes().vec()), " -> ", classes, "\n"));
  hash.update(px, size_t(pixels.numel()));
  const std::string key = hash.hex();
  ensure_writable_dir(cache_dir);
  static const std::regex cache_files(R"(logits-[0-9a-f]+\.bin)");
  remove_orphaned_temporaries(cache_dir, cache_files);
  const fs::path file = cache_dir / cat("logits-", key, ".bin");
  const fs::path parts = cache_dir / cat("logits-", key, ".parts");

  std::string why;
  torch::Tensor table = read_logit_cache_file(file, key, &why);
  const bool hit = table.defined() && table.size(0) == n && table.size(1) == classes;
  std::error_code ec;
  if (hit) fs::remove_all(parts, ec);  // a kill between writing the file and removing its parts
  if (!hit) {
    if (!why.empty())
      std::fprintf(stderr, "retort: teacher cache %s is unusable (%s); rebuilding it\n",
                   file.c_str(), why.c_str());
    ensure_writable_dir(parts);
    static const std::regex part_files(R"(shard-[0-9]+\.bin)");
    remove_orphaned_temporaries(parts, part_files);
    const int64_t per_shard = std::max<int64_t>(1, o.images_per_shard);
    const int64_t shards = (n + per_shard - 1) / per_shard;
    auto shard_first = [&](int64_t s) { return s * per_shard; };
    auto shard_len = [&](int64_t s) { return std::min(per_shard, n - s * per_shard); };
    auto part_key = [&](int64_t s) {
      return cat(key, " images ", shard_first(s), "+", shard_len(s));
    };
    table = torch::empty({n, classes}, torch::kFloat32);
    float* rows = table.data_ptr<float>();

    // The shards on disk (each whole or not read); the images of the others are asked for.
    struct Request {
      int64_t shard, first, count;
    };
    std::vector<Request> requests;
    std::vector<int64_t> unanswered(size_t(shards), 0);  // requests of each shard not yet answered
    int64_t kept = 0, missing_images = 0;
    const int64_t batch = std::max<int64_t>(1, e.batch);
    for (int64_t s = 0; s < shards; ++s) {
      std::string part_why;
      torch::Tensor part = read_logit_cache_file(parts / shard_name(s), part_key(s), &part_why);
      if (part.defined() && part.size(0) == shard_len(s) && part.size(1) == classes) {
        table.narrow(0, shard_first(s), shard_len(s)).copy_(part);
        ++kept;
        continue;
      }
      if (!part_why.empty())
        std::fprintf(stderr, "retort: %s is unusable (%s); asking for its images again\n",
                     (parts / shard_name(s)).c_str(), part_why.c_str());
      for (int64_t first = shard_first(s); first < shard_first(s) + shard_len(s); first += batch) {
        requests.push_back({s, first, std::min(batch, shard_first(s) + shard_len(s) - first)});
        ++unanswered[size_t(s)];
      }
      missing_images += shard_len(s);
    }

    if (!requests.empty()) {
      try {
        check_api_classifier(client, set);  // before any image is sent
      } catch (const BudgetExhausted& b) {
        rethrow_budget(b, parts);
      }
      ProgressBar bar("teacher API classify", missing_images, "img");
      std::mutex mutex;
      int64_t done = 0;
      bool interrupted = false;
      try {
        run_concurrently(
            int64_t(requests.size()), e.concurrency,
            [&](int64_t r) {
              const Request q = requests[size_t(r)];
              nlohmann::json input = nlohmann::json::array();
              for (int64_t i = q.first; i < q.first + q.count; ++i)
                input.push_back(std::vector<int>(px + i * d, px + (i + 1) * d));
              const nlohmann::json answer =
                  client.post("classify", {{"model", e.model}, {"input", std::move(input)}});
              // Each request fills rows of its own: no lock while reading the answer.
              read_classify_answer(answer, q.count, classes,
                                   cat("images ", q.first, "..", q.first + q.count - 1, " through ",
                                       e.base_url, "/classify"),
                                   rows + q.first * classes);
              bool whole = false;
              {
                std::lock_guard<std::mutex> lock(mutex);
                whole = --unanswered[size_t(q.shard)] == 0;
                done += q.count;
                bar.update(done, done, cat(client.requests(), " requests"));
              }
              if (!whole) return;
              // Atomic: a kill never leaves half a shard, and every shard written is whole.
              write_logit_cache_file(parts / shard_name(q.shard), part_key(q.shard),
                                     table.narrow(0, shard_first(q.shard), shard_len(q.shard)),
                                     set.source);
              std::lock_guard<std::mutex> lock(mutex);
              ++kept;
            },
            &interrupted);
      } catch (const BudgetExhausted& b) {
        throw BudgetExhausted(cat(b.what(), "; ", kept, " of ", shards, " shards of ", per_shard,
                                  " images are harvested and kept in ", parts.string(),
                                  "; raise it and rerun to ask for the rest"));
      }
      if (interrupted)
        throw Interrupted(
            cat("teacher API classify: ", shards - kept, " of ", shards, " shards of ", per_shard,
                " images left to ask for; the finished ones are kept in ", parts.string()));
      bar.finish(cat(client.requests(), " requests, ", client.tokens(), " tokens, ",
                     client.retries(), " retries"));
    }
    write_logit_cache_file(file, key, table,
                           cat(set.source, ", classified by ", e.model, " at ", e.base_url));
    fs::remove_all(parts, ec);  // all of it is in the cache file now
  }
  if (status) {
    status->path = file.string();
    status->hit = hit;
    status->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    status->bytes = static_cast<int64_t>(fs::file_size(file, ec));
  }
  return table;
}

// ---- the teacher ---------------------------------------------------------------------------

ApiClassifierTeacher::ApiClassifierTeacher(torch::Tensor log_probs, std::string description)
    : table_(std::move(log_probs)), description_(std::move(description)) {}

TeacherSignal ApiClassifierTeacher::signal(const Batch& batch) {
  if (batch.augmented)
    fail("the openai: teacher answers only the training images it was asked about beforehand; ",
         "this batch was augmented (train.crop_padding / train.hflip)");
  const int64_t last = batch.index.max().item<int64_t>();
  if (last >= table_.size(0))
    fail("the openai: teacher was asked about ", table_.size(0),
         " images but the batch asks for index ", last);
  return TeacherSignal::dense(table_.index_select(0, batch.index.to(table_.device())));
}

}  // namespace retort
