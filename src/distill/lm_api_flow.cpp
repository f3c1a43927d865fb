// `retort distill` with an openai: teacher (teacher.path = "openai:URL"): the endpoint's
// top-k logprobs harvested into a top-k cache (distill.method = logits), or its written text
// (distill.method = sequence). The local-teacher flows are lm_flows.cpp; the teacher itself
// (client, harvest, ApiTopkTeacher) is src/teachers/.
#include <torch/torch.h>

#include <cstdio>

#include "retort/api_teacher.h"
#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/lm_flows.h"

namespace retort {

namespace {

nlohmann::json api_usage(const ApiClient& client) {
  return {
      {"requests", client.requests()}, {"tokens", client.tokens()}, {"retries", client.retries()}};
}

// "teacher API: N requests, M tokens, R retries; <what>" on stderr.
void print_usage(const ApiClient& client, const std::string& what) {
  if (dist::is_main())
    std::fprintf(stderr, "teacher API: %lld requests, %lld tokens, %lld retries; %s\n", (long long)client.requests(),
                 (long long)client.tokens(), (long long)client.retries(), what.c_str());
}

}  // namespace

LmRunResult lm_distill_api(const Options& o, const std::filesystem::path& dir, const ApiEndpoint& endpoint) {
  const std::string& url = o.teacher.path;
  if (dist::world_size() > 1)
    fail(
        "an openai: teacher is harvested by one process; run `retort distill` without torchrun / "
        "srun (the ",
        "harvest is cached, so a data-parallel run afterwards reads it)");
  if (o.distill.init_from_teacher)
    fail("distill.init_from_teacher needs the teacher's weights, which an openai: teacher (", url,
         ") does not give");
  const std::string& method = o.distill.method;
  const int64_t k = o.distill.top_k;
  if (method == "logits") {
    if (k < 1 || k > 20)
      fail("distill.top_k = ", k,
           ": an API returns at most the top 20 logprobs; set distill.top_k between 1 and 20 ",
           "(or distill.method = sequence for text only)");
    if (o.distill.on_policy > 0)
      fail("distill.on_policy = ", o.distill.on_policy,
           " needs the teacher's distribution on the ",
           "student's own samples, which an openai: teacher could give only with one request per "
           "sampled window and ",
           "step; set distill.on_policy = 0 (the harvested training windows are asked once and "
           "cached)");
  }
  ApiClient client(endpoint);
  std::shared_ptr<Tokenizer> tokenizer;
  if (o.text.tokenizer == "auto") {
    tokenizer = fetch_api_tokenizer(client);
    if (!tokenizer)
      fail("the endpoint ", endpoint.base_url,
           " publishes no tokenizer; set text.tokenizer = byte or sentencepiece ",
           "(distill.method = sequence works with any tokenizer; logits only with the endpoint's "
           "own, which is checked token ",
           "by token)");
  }
  TextData data = load_text_data(o.text, tokenizer, dir / "tokenizer");
  const std::filesystem::path& cache_dir = o.run.cache_dir;

  if (method == "sequence") {
    TextCorpus written = api_written_corpus(client, *data.tokenizer, data.train, data.seq_len,
                                            sequence_kd_options_from(o, data.seq_len), cache_dir);
    print_usage(client, "sequence KD: " + written.source);
    TeacherTextRun run = teacher_text_run(o, dir, data, written, url + "\n" + endpoint.model, url);
    run.spec.extra["teacher_model"] = endpoint.model;
    run.spec.extra["teacher_api"] = api_usage(client);
    run.spec.label = "distill (sequence, API)";
    return execute_lm_run(run.spec, run.data);  // no agreement: the endpoint's top-1 is not asked for
  }

  const int64_t batch = o.data.eval_batch_size;
  PreparedLmTeacher prepared;
  prepared.top_k = k;
  TokenBatcher train_windows(data.train, data.seq_len, batch, /*shuffle=*/false, /*seed=*/0);
  TopkCache cache = harvest_topk_cache(client, *data.tokenizer, train_windows, data.train, k,
                                       cache_dir, &prepared.cache);
  // The validation windows as score_lm cuts them (the last one padded): the teacher's top-1 there
  // gives the student's agreement with it.
  TokenBatcher val_windows(data.validation, data.seq_len, batch, /*shuffle=*/false, /*seed=*/0,
                           /*pad_last=*/true);
  TopkCache val_cache =
      harvest_topk_cache(client, *data.tokenizer, val_windows, data.validation, k, cache_dir);
  prepared.val_top1 = val_cache.rows(torch::arange(val_windows.windows(), torch::kInt64))
                          .ids.select(-1, 0);  // (W, T)
  prepared.signal = std::make_shared<ApiTopkTeacher>(
      cache, cat(url, " (model ", endpoint.model, ", top-", k, " cache ", cache.info().key, ")"));
  print_usage(client, cat("cache ", prepared.cache.path, " (", prepared.cache.hit ? "hit" : "built", ")"));

  RunSpec spec = lm_labels_run_spec(o, o.model, o.train, data, dir);
  make_lm_distill_spec(spec, o, prepared);
  spec.extra["teacher"] = url;
  spec.extra["teacher_model"] = endpoint.model;
  spec.extra["teacher_api"] = api_usage(client);
  spec.label = "distill (API)";
  return execute_lm_run(spec, data);
}

}  // namespace retort
