// What retort asks of an openai: teacher: its top-k over token windows (teacher forcing
// through /completions with echo, into the top-k cache a local teacher fills) and its
// continuations of prompts (sequence-level KD, kept as JSONL one record at a time).
// The HTTP client itself (retries, budget) is api_client.cpp; what the answers say, api_answers.cpp.
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "retort/api_teacher.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/progress.h"
#include "retort/runtime.h"
#include "teachers/api_answers.h"
#include "teachers/api_work.h"

namespace retort {

// ---- the request pool (api_work.h) -----------------------------------------------------------

void run_concurrently(int64_t n, int64_t threads, const std::function<void(int64_t)>& work,
                      bool* interrupted) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    while (!stop.load()) {
      if (interrupt_requested()) {
        stop = true;
        break;
      }
      const int64_t i = next.fetch_add(1);
      if (i >= n) break;
      try {
        work(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        stop = true;
      }
    }
  };
  const int64_t t = std::max<int64_t>(1, std::min(threads, n));
  std::vector<std::thread> pool;
  for (int64_t i = 1; i < t; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  *interrupted = interrupt_requested();
}

[[noreturn]] void rethrow_budget(const BudgetExhausted& e, const fs::path& kept) {
  throw BudgetExhausted(cat(e.what(), "; what was harvested is kept in ", kept.string(),
                            "; raise it and rerun to continue"));
}

// ---- top-k over windows --------------------------------------------------------------------

namespace {

// One window teacher-forced through the endpoint: its top-k at positions [0, n) into ids/logprobs,
// (T, k) row-major; positions n..T-1 (past the end of a padded window) stay as they were filled.
void harvest_window(ApiClient& client, const TokenStrings& strings, const std::vector<int64_t>& x,
                    int64_t n, int64_t k, int64_t window, int64_t* ids, float* logprobs) {
  const std::string what = cat("window ", window, " through ", client.endpoint().base_url);
  nlohmann::json body = {{"model", client.endpoint().model},
                         {"prompt", std::vector<int64_t>(x.begin(), x.begin() + n)},
                         {"max_tokens", 1},
                         {"temperature", 0},
                         {"logprobs", k},
                         {"echo", true},
                         {"n", 1}};
  read_topk_answer(client.post("completions", body), strings, x, n, k, what, ids, logprobs);
}

}  // namespace

TopkCache harvest_topk_cache(ApiClient& client, const Tokenizer& tokenizer,
                             const TokenBatcher& windows, const TokenSet& set, int64_t k,
                             const std::filesystem::path& cache_dir, CacheStatus* status,
                             int64_t windows_per_shard) {
  if (k < 1 || k > 20)
    fail("an API returns at most the top 20 logprobs; top-k must be in [1, 20], got ", k);
  if (set.vocab_size != tokenizer.vocab_size())
    fail("the token set has a vocabulary of ", set.vocab_size, ", the tokenizer ",
         tokenizer.describe());
  const auto start = std::chrono::steady_clock::now();
  const ApiEndpoint& e = client.endpoint();
  TopkCacheInfo info;
  info.k = k;
  info.seq_len = windows.seq_len();
  info.windows = windows.windows();
  info.vocab_size = set.vocab_size;
  info.windows_per_shard = std::max<int64_t>(1, windows_per_shard);
  Hasher key;
  key.update(cat("openai\n", e.base_url, "\n", e.model, "\n", k, "/", info.seq_len, "/",
                 info.windows, "\n", tokenizer.fingerprint(), "\n"));
  key.update(set.tokens.data_ptr(), set.tokens.numel() * set.tokens.element_size());
  info.key = cat(kApiTeacherPrefix, e.base_url, " ", e.model, " ", key.hex());
  fs::path dir = cache_dir / cat("topk-api-", key.hex(), "-k", k);
  ensure_writable_dir(dir);
  TopkCacheWriter writer(dir, info);
  const std::vector<int64_t> missing = writer.missing_shards();
  const bool hit = missing.empty();
  if (!hit) {
    // Before any harvest request: a retort endpoint names its tokenizer; it must be the student's.
    nlohmann::json model;
    try {
      model = api_model_entry(client);
    } catch (const BudgetExhausted& b) {
      rethrow_budget(b, dir);
    } catch (const Interrupted&) {
      throw;
    } catch (const Error& err) {
      std::fprintf(stderr, "warning: %s; the tokenizer is checked token by token instead\n",
                   err.what());
    }
    refuse_classifier_entry(model, e.model, e.base_url);
    const std::string theirs = entry_tokenizer_fingerprint(model);
    if (!theirs.empty() && theirs != tokenizer.fingerprint())
      fail("tokenizer mismatch: the endpoint's model ", e.model, " uses tokenizer ", theirs,
           ", the student ", tokenizer.describe(), " ", tokenizer.fingerprint(),
           "; use the endpoint's tokenizer (text.tokenizer = auto) or distill.method = sequence");
    const TokenStrings strings(tokenizer);
    const int64_t T = info.seq_len, N = set.size();
    int64_t total = 0;
    for (int64_t s : missing) {
      auto [first, last] = writer.shard_windows(s);
      total += last - first;
    }
    ProgressBar bar(cat("teacher API top-", k), total, "win");
    std::mutex bar_mutex;
    std::atomic<int64_t> done{0};
    for (size_t m = 0; m < missing.size(); ++m) {
      const int64_t s = missing[m];
      auto [first, last] = writer.shard_windows(s);
      const int64_t count = last - first;
      Batch batch = windows.windows_batch(torch::arange(first, last, torch::kInt64));
      torch::Tensor x = batch.x.contiguous();  // (count, T)
      // Positions past the end of a padded window are never scored; they keep this filler.
      torch::Tensor ids = torch::arange(k, torch::kInt64)
                              .remainder(info.vocab_size)
                              .expand({count, T, k})
                              .contiguous();
      torch::Tensor logprobs = torch::full({count, T, k}, -std::log(double(k)), torch::kFloat32);
      auto x_a = x.accessor<int64_t, 2>();
      auto ids_a = ids.accessor<int64_t, 3>();
      auto lp_a = logprobs.accessor<float, 3>();
      bool interrupted = false;
      std::atomic<int64_t> answered{0};
      try {
        run_concurrently(
            count, e.concurrency,
            [&](int64_t i) {
              const int64_t w = first + i;
              const int64_t n = std::min(T, N - 1 - w * T);  // positions with a next token
              std::vector<int64_t> row(T);
              for (int64_t t = 0; t < T; ++t) row[t] = x_a[i][t];
              harvest_window(client, strings, row, n, k, w, ids_a[i].data(), lp_a[i].data());
              answered.fetch_add(1);
              const int64_t d = done.fetch_add(1) + 1;
              std::lock_guard<std::mutex> lock(bar_mutex);
              bar.update(d, d * T, cat(client.requests(), " requests"));
            },
            &interrupted);
      } catch (const BudgetExhausted& b) {
        rethrow_budget(b, dir);
      }
      if (answered.load() == count)
        writer.write_shard(s, ids, logprobs);  // atomic: a kill loses only this shard
      if (interrupted)
        throw Interrupted(
            cat("teacher API harvest: ", missing.size() - m - (answered.load() == count), " of ",
                writer.info().shards(), " shards left to ask for; the finished ones are kept in ",
                dir.string()));
    }
    bar.finish(cat(client.requests(), " requests, ", client.tokens(), " tokens, ", client.retries(),
                   " retries"));
  }
  TopkCache cache = TopkCache::open(dir, info.key);
  if (status) {
    status->path = dir.string();
    status->hit = hit;
    status->bytes = cache.bytes();
    status->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return cache;
}

// ---- written text --------------------------------------------------------------------------

namespace {

// The records of a JSONL answer file: index -> text. An incomplete or unreadable tail (a kill
// mid-write) is cut off the file so that appends start on a clean line.
std::map<int64_t, std::string> read_answers(const fs::path& file, int64_t prompts) {
  std::map<int64_t, std::string> out;
  if (!fs::exists(file)) return out;
  const std::string text = read_text(file);
  size_t pos = 0, good = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // no newline: the record was not finished
    auto j = nlohmann::json::parse(text.begin() + pos, text.begin() + end, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("i") || !j["i"].is_number_integer() ||
        !j.contains("text") || !j["text"].is_string())
      break;
    const int64_t i = j["i"].get<int64_t>();
    if (i >= 0 && i < prompts) out[i] = j["text"].get<std::string>();
    pos = good = end + 1;
  }
  if (good < text.size()) {
    std::fprintf(stderr, "%s: dropping an incomplete last record (%zu bytes)\n",
                 file.string().c_str(), text.size() - good);
    fs::resize_file(file, good);
  }
  return out;
}

// Appends whole lines and makes each durable before the next.
class JsonlAppender {
 public:
  explicit JsonlAppender(const fs::path& file) : file_(file) {
    fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot open ", file.string(), " for appending");
  }
  ~JsonlAppender() { ::close(fd_); }
  void append(const std::string& line) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t off = 0;
    while (off < line.size()) {
      ssize_t w = ::write(fd_, line.data() + off, line.size() - off);
      if (w < 0) fail("cannot write to ", file_.string());
      off += size_t(w);
    }
    ::fsync(fd_);
  }

 private:
  fs::path file_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace

TextCorpus api_written_corpus(ApiClient& client, const Tokenizer& tokenizer, const TokenSet& train,
                              int64_t seq_len, const SequenceKdOptions& o,
                              const std::filesystem::path& cache_dir) {
  const ApiEndpoint& e = client.endpoint();
  const std::string key = sequence_kd_key(cat("openai\n", e.base_url, "\n", e.model, "\n"), tokenizer, train, seq_len, o);
  ensure_writable_dir(cache_dir);
  const fs::path file = cache_dir / cat("seqkd-api-", key, ".jsonl");
  // Sent as text, so that foreign endpoints (another tokenizer) can answer; decode(encode(x)) == x.
  std::vector<std::string> prompts;
  for (const torch::Tensor& row : sequence_kd_prompts(tokenizer, train, seq_len, o)) {
    torch::Tensor ids = row.to(torch::kInt32).contiguous();
    prompts.push_back(tokenizer.decode(std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel())));
  }
  const int64_t n = int64_t(prompts.size());
  std::map<int64_t, std::string> answers = read_answers(file, n);
  const bool hit = int64_t(answers.size()) == n;
  if (!hit) {
    std::vector<int64_t> todo;
    for (int64_t i = 0; i < n; ++i)
      if (!answers.count(i)) todo.push_back(i);
    JsonlAppender out(file);
    std::mutex mutex;
    ProgressBar bar("teacher API writes", int64_t(todo.size()), "seq");
    int64_t done = 0;
    bool interrupted = false;
    try {
      run_concurrently(
          int64_t(todo.size()), e.concurrency,
          [&](int64_t t) {
            const int64_t i = todo[t];
            nlohmann::json body = {
                {"model", e.model},
                {"prompt", prompts[i]},
                {"max_tokens", o.new_tokens},
                {"temperature", o.sampling.temperature},
                {"top_p", o.sampling.top_p},
                {"seed", int64_t(mix_seed(o.sampling.seed, 0x5e9, uint64_t(i)) & 0x7fffffff)},
                {"n", 1}};
            const std::string doc =
                prompts[i] + completion_text(client.post("completions", body), cat("prompt ", i));
            // Cut text need not be valid UTF-8: such bytes become U+FFFD rather than an error.
            const std::string line = nlohmann::json{{"i", i}, {"text", doc}}.dump(
                -1, ' ', false, nlohmann::json::error_handler_t::replace);
            out.append(line + "\n");
            std::lock_guard<std::mutex> lock(mutex);
            answers[i] = nlohmann::json::parse(line)["text"].get<std::string>();
            ++done;
            bar.update(done, done);
          },
          &interrupted);
    } catch (const BudgetExhausted& b) {
      rethrow_budget(b, file);
    }
    if (interrupted)
      throw Interrupted(cat("sequence KD through the API: ", n - int64_t(answers.size()), " of ", n,
                            " prompts left to ask for; the answers so far are kept in ",
                            file.string()));
    bar.finish(cat(client.requests(), " requests, ", client.tokens(), " tokens, ", client.retries(),
                   " retries"));
  }
  TextCorpus corpus;
  for (auto& [i, text] : answers)
    if (!text.empty()) corpus.documents.push_back(std::move(text));
  corpus.source = cat("text written by ", e.model, " at ", e.base_url, " (", n, " sequences, ",
                      hit ? "cached " : "kept in ", file.string(), ")");
  return corpus;
}

}  // namespace retort
