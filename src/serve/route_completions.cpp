// POST /v1/completions and /v1/chat/completions, whole or streamed as server-sent events.
#include "retort/hash.h"
#include "retort/watermark.h"
#include "serve/routes.h"

namespace retort::serve {

namespace {

// What a chat user asked last (the turns before it repeat in every request of a conversation).
std::string last_message(const json& messages, const std::string& otherwise) {
  const json& c = messages.back().contains("content") ? messages.back().at("content") : json(nullptr);
  return c.is_string() ? c.get<std::string>() : otherwise;
}

// The streamed body: chunks as the engine writes tokens; the row is durable before [DONE].
void stream_completion(ServeContext& c, const CallPtr& call, const ServedModel& m, const CompletionCall& cc, const Ids& ids,
                       http::ChunkSink& sink) {
  auto send = [&](const json& j) { return sink.write("data: " + GuardChain::dump(j) + "\n\n"); };
  int status = 200;
  std::string code;
  try {
    std::vector<size_t> offset(size_t(cc.gen.n), cc.gen.echo ? cc.prompt_text.size() : 0);
    if (cc.chat)
      for (int64_t k = 0; k < cc.gen.n; ++k) send(chat_chunk(m, ids, k, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
    GenerationResult r = c.engine.generate(m, cc.gen, [&](int64_t k, const std::string& text, const std::vector<TokenLogprob>* lp) {
      if (k < 0) {  // echo: the prompt first
        bool ok = true;
        for (int64_t j = 0; j < cc.gen.n && ok; ++j) ok = send(completion_chunk(m, ids, j, cc.prompt_text, lp, 0, nullptr));
        return ok;
      }
      bool ok = cc.chat ? send(chat_chunk(m, ids, k, {{"content", text}}, lp, nullptr))
                        : send(completion_chunk(m, ids, k, text, lp, offset[size_t(k)], nullptr));
      offset[size_t(k)] += text.size();
      return ok;
    });
    for (int64_t k = 0; k < int64_t(r.choices.size()); ++k) {
      const char* why = r.choices[size_t(k)].finish_reason.c_str();
      cc.chat ? send(chat_chunk(m, ids, k, json::object(), nullptr, why)) : send(completion_chunk(m, ids, k, "", nullptr, offset[size_t(k)], why));
    }
    if (cc.include_usage)
      send({{"id", ids.id}, {"object", cc.chat ? "chat.completion.chunk" : "text_completion"}, {"created", ids.created},
            {"model", ids.model}, {"choices", json::array()}, {"usage", usage_of(cc, r)}});
    call->audit.completion_tokens = r.completion_tokens;
    c.chain.settle(*call, call->audit.prompt_tokens + r.completion_tokens);
    if (!sink.writable()) status = 499, code = "client_closed";
  } catch (const ApiError& e) {
    status = e.status, code = e.code;
    send(e.body());
  } catch (const std::exception& e) {
    status = 500, code = "server_error";
    send(ApiError(500, "server_error", "server_error", e.what()).body());
  }
  c.chain.leave(*call);
  c.chain.record(*call, status, code);
  sink.write("data: [DONE]\n\n");
}

void completions(ServeContext& c, const CallPtr& call, const http::Request& req, http::Response& res, bool chat) {
  json body = parse_body(req.body);
  const ServedModel& m = served_model(c, *call, body, "language_model");
  CompletionCall cc = chat ? parse_chat(body, m) : parse_completion(body, m);
  c.chain.describe_prompt(*call, chat ? last_message(body.at("messages"), cc.prompt_text) : cc.prompt_text);
  AuditRow& a = call->audit;
  a.prompt_hash = Hasher().update(chat ? GuardChain::dump(body.at("messages")) : cc.prompt_text).hex();
  a.prompt_chars = int64_t(cc.prompt_text.size());
  a.prompt_tokens = int64_t(cc.gen.prompt.size());
  a.n = cc.gen.n;
  a.max_tokens = cc.gen.max_tokens;
  a.logprobs = cc.gen.logprobs;
  a.echo = cc.gen.echo;
  a.stream = cc.stream;
  a.temperature = cc.gen.temperature;
  c.chain.match_partners(*call, /*prompt_known=*/true);  // the prompt's fingerprints and the request's shape
  c.chain.shape(*call, cc.gen);  // after the audit row took what the client asked for: the detector reads that
  if (const Watermark* w = c.engine.watermark()) {
    a.watermark = watermark_scheme_name(w->options().scheme);
    a.watermark_key = w->key().id;
  }
  c.engine.validate(m, cc.gen);
  c.chain.reserve(*call, a.prompt_tokens + cc.gen.max_tokens * cc.gen.n);
  c.chain.admit(*call, cc.gen.n);  // its choices are rows of a batch
  Ids ids{new_id(chat ? "chatcmpl-" : "cmpl-"), int64_t(unix_now()), m.id};
  if (!cc.stream) {
    GenerationResult r = c.engine.generate(m, cc.gen);
    a.completion_tokens = r.completion_tokens;
    c.chain.settle(*call, a.prompt_tokens + r.completion_tokens);
    GuardChain::send_json(res, 200, completion_response(cc, m, r, ids));
    return;
  }
  call->streaming = true;
  res.status = 200;
  res.content_type = "text/event-stream";
  res.set_header("Cache-Control", "no-cache");
  const ServedModel* mp = &m;
  res.stream = [&c, call, mp, cc, ids](http::ChunkSink& sink) { stream_completion(c, call, *mp, cc, ids, sink); };
}

}  // namespace

void add_completion_routes(http::Transport& t, ServeContext& c) {
  for (bool chat : {false, true}) {
    const char* path = chat ? "/v1/chat/completions" : "/v1/completions";
    t.route("POST", path, [&c, chat, path](const http::Request& req, http::Response& res) {
      c.chain.handle(req, res, path, true,
                     [&c, chat](const CallPtr& call, const http::Request& req, http::Response& res) { completions(c, call, req, res, chat); });
    });
  }
}

}  // namespace retort::serve
