// POST /v1/classify: image classifiers, pixel values 0..255 in, probabilities out.
#include "retort/hash.h"
#include "retort/watermark_store.h"
#include "serve/routes.h"

namespace retort::serve {

namespace {

void classify(ServeContext& c, const CallPtr& call, const http::Request& req, http::Response& res) {
  json body = parse_body(req.body);
  const ServedModel& m = served_model(c, *call, body, "classifier");
  ClassifyCall cc = parse_classify(body, m);
  call->audit.prompt_hash = Hasher().update(GuardChain::dump(body.at("input"))).hex();
  call->audit.prompt_chars = int64_t(req.body.size());
  call->audit.prompt_tokens = call->audit.n = int64_t(cc.inputs.size());
  call->audit.logprobs = cc.top_k;
  c.chain.reserve(*call, int64_t(cc.inputs.size()));
  c.chain.admit(*call, std::min<int64_t>(int64_t(cc.inputs.size()), c.options.max_batch));
  std::vector<std::pair<int64_t, int64_t>> marked;
  auto probs = c.engine.classify(m, cc.inputs, &marked);
  if (!marked.empty()) {  // DAWN: the marked inputs and their answers, durable before the answer leaves
    const Watermark& w = *c.engine.watermark();
    std::vector<DawnMark> rows;
    for (const auto& [i, answered] : marked)
      rows.push_back({unix_now(), w.key().id, m.id, call->key ? call->key->id : 0, m.classes, answered, cc.inputs[size_t(i)]});
    WatermarkStore(c.chain.db()).record_dawn(rows);
    call->audit.watermark = "dawn";
    call->audit.watermark_key = w.key().id;
  }
  c.chain.settle(*call, int64_t(cc.inputs.size()));
  GuardChain::send_json(res, 200, classify_response(cc, m, probs, {new_id("clf-"), int64_t(unix_now()), m.id}));
}

}  // namespace

void add_classify_routes(http::Transport& t, ServeContext& c) {
  t.route("POST", "/v1/classify", [&c](const http::Request& req, http::Response& res) {
    c.chain.handle(req, res, "/v1/classify", true,
                   [&c](const CallPtr& call, const http::Request& req, http::Response& res) { classify(c, call, req, res); });
  });
}

}  // namespace retort::serve
