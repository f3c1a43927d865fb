// The official `openai` npm client against `retort serve` (tests/e2e/serve_test.sh starts it).
// usage: node openai_client_test.mjs BASE_URL KEY LIMITED_KEY MODEL
//   LIMITED_KEY allows 2 requests per minute: the third must be a 429 with Retry-After.
// Prints one "ok: ..." / "FAIL: ..." line per check; exits 1 when any failed.
import OpenAI from "openai";

const [base, key, limitedKey, model] = process.argv.slice(2);
if (!model) {
  console.error("usage: node openai_client_test.mjs BASE_URL KEY LIMITED_KEY MODEL");
  process.exit(2);
}
let failures = 0;
const check = (what, ok, detail = "") => {
  console.log(`${ok ? "ok" : "FAIL"}: ${what}${detail ? ` (${detail})` : ""}`);
  if (!ok) failures++;
};
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0 });
const healthy = async (after) => {
  const r = await fetch(base.replace(/\/v1$/, "") + "/health");
  const body = await r.json();
  check(`server healthy after ${after}`, r.status === 200 && body.status === "ok");
};
const isLogprob = (x) => typeof x === "number" && Number.isFinite(x) && x <= 1e-6;

// models
const models = await client.models.list();
check("models.list names the model", models.data.some((m) => m.id === model), models.data.map((m) => m.id).join(","));

// completions with logprobs
const prompt = "And God said, Let there be";
const c1 = await client.completions.create({ model, prompt, max_tokens: 6, logprobs: 5, seed: 7, temperature: 0.8 });
const lp = c1.choices[0].logprobs;
check("completion has 6 tokens of logprobs", lp.tokens.length === 6 && lp.token_logprobs.length === 6, `${lp.tokens.length}`);
check("top_logprobs: 5 (+ the sampled token) per position, all log-probabilities",
  lp.top_logprobs.every((d) => Object.keys(d).length >= 5 && Object.keys(d).length <= 6 && Object.values(d).every(isLogprob)));
check("each sampled token's logprob is listed in its top_logprobs",
  lp.tokens.every((t, i) => Math.abs(lp.top_logprobs[i][t] - lp.token_logprobs[i]) < 1e-6));
// (tokens that are not whole UTF-8 characters show as "bytes:\xNN", so they cannot be joined)
if (!lp.tokens.some((t) => t.startsWith("bytes:"))) check("the text is the tokens joined", lp.tokens.join("") === c1.choices[0].text);
check("usage counts 6 completion tokens", c1.usage.completion_tokens === 6 &&
  c1.usage.total_tokens === c1.usage.prompt_tokens + 6, JSON.stringify(c1.usage));
const again = await client.completions.create({ model, prompt, max_tokens: 6, logprobs: 5, seed: 7, temperature: 0.8 });
check("same seed, same text", again.choices[0].text === c1.choices[0].text);
await healthy("completions");

// echo: the prompt scored
const e = await client.completions.create({ model, prompt, max_tokens: 0, echo: true, logprobs: 3 });
const el = e.choices[0].logprobs;
check("echo returns the prompt's tokens", el.tokens.join("") === prompt && el.tokens.length === e.usage.prompt_tokens);
check("the first prompt token has no logprob, the others do",
  el.token_logprobs[0] === null && el.top_logprobs[0] === null && el.token_logprobs.slice(1).every(isLogprob));
const e2 = await client.completions.create({ model, prompt, max_tokens: 1, echo: true, logprobs: 3, temperature: 0 });
check("echo + 1 token: prompt tokens then the new one", e2.choices[0].logprobs.tokens.length === e.usage.prompt_tokens + 1 &&
  e2.choices[0].text.startsWith(prompt));
check("echoed logprobs do not depend on max_tokens",
  el.token_logprobs.slice(1).every((x, i) => Math.abs(x - e2.choices[0].logprobs.token_logprobs[i + 1]) < 1e-5));
await healthy("echo");

// n > 1
const many = await client.completions.create({ model, prompt, max_tokens: 5, n: 3, seed: 3 });
check("n = 3 gives three choices, indexed 0..2", many.choices.length === 3 && many.choices.every((ch, i) => ch.index === i));
check("usage counts every choice's tokens", many.usage.completion_tokens === 15, `${many.usage.completion_tokens}`);
await healthy("n > 1");

// streaming completions: the same text as without streaming, for the same seed
const stream = await client.completions.create({ model, prompt, max_tokens: 6, logprobs: 5, seed: 7, temperature: 0.8, stream: true });
let streamed = "", chunks = 0, finish = null;
for await (const chunk of stream) {
  chunks++;
  streamed += chunk.choices[0]?.text ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
check("streamed completion equals the unstreamed one", streamed === c1.choices[0].text, JSON.stringify([streamed, c1.choices[0].text]));
check("streaming sent several chunks and a finish_reason", chunks >= 3 && finish === "length", `${chunks} chunks, ${finish}`);
await healthy("streaming");

// chat, with logprobs, then streamed
const messages = [{ role: "system", content: "Speak." }, { role: "user", content: "Who made heaven?" }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 8, logprobs: true, top_logprobs: 3, seed: 11 });
const msg = chat.choices[0].message;
check("chat answers as the assistant", msg.role === "assistant" && typeof msg.content === "string");
const content = chat.choices[0].logprobs.content;
check("chat logprobs: one entry per token with 3 top_logprobs and bytes",
  content.length === chat.usage.completion_tokens && content.every((t) => t.top_logprobs.length === 3 && Array.isArray(t.bytes)),
  `${content.length} entries, ${chat.usage.completion_tokens} tokens`);
const chatStream = await client.chat.completions.create({ model, messages, max_tokens: 8, seed: 11, stream: true });
let chatText = "", roleSeen = false;
for await (const chunk of chatStream) {
  roleSeen ||= chunk.choices[0]?.delta?.role === "assistant";
  chatText += chunk.choices[0]?.delta?.content ?? "";
}
check("streamed chat equals the unstreamed one", roleSeen && chatText === msg.content, JSON.stringify([chatText, msg.content]));
await healthy("chat");

// errors the client raises as its own error classes
const expectError = async (what, fn, Class, status) => {
  try {
    await fn();
    check(what, false, "no error");
  } catch (err) {
    check(what, err instanceof Class && err.status === status && typeof err.error?.message === "string",
      `${err.constructor.name} ${err.status}: ${err.error?.message ?? err.message}`);
    return err;
  }
};
const wrong = new OpenAI({ baseURL: base, apiKey: "rt-not-a-key", maxRetries: 0 });
await expectError("a wrong key is a 401", () => wrong.completions.create({ model, prompt, max_tokens: 2 }), OpenAI.AuthenticationError, 401);
await healthy("401");
await expectError("an unknown model is a 404", () => client.completions.create({ model: "no-such-model", prompt, max_tokens: 2 }),
  OpenAI.NotFoundError, 404);
await expectError("a wrong type is a 400", () => client.completions.create({ model, prompt, max_tokens: 2, temperature: "hot" }),
  OpenAI.BadRequestError, 400);
await healthy("400");
const raw = await fetch(base + "/completions", { method: "POST", headers: { Authorization: `Bearer ${key}` }, body: "{\"model\": " });
const rawBody = await raw.json();
check("malformed JSON is a 400 with an OpenAI error object", raw.status === 400 && rawBody.error?.type === "invalid_request_error",
  `${raw.status} ${JSON.stringify(rawBody)}`);
await healthy("malformed JSON");

// the limited key: 2 requests per minute
const limited = new OpenAI({ baseURL: base, apiKey: limitedKey, maxRetries: 0 });
await limited.completions.create({ model, prompt, max_tokens: 1 });
await limited.completions.create({ model, prompt, max_tokens: 1 });
const err = await expectError("the third request in a minute is a 429",
  () => limited.completions.create({ model, prompt, max_tokens: 1 }), OpenAI.RateLimitError, 429);
const retryAfter = Number(err?.headers?.get("retry-after"));
check("the 429 says when to retry", retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
check("the 429 carries x-ratelimit headers", err?.headers?.get("x-ratelimit-limit-requests") === "2" &&
  err?.headers?.get("x-ratelimit-remaining-requests") === "0");
await healthy("429");

console.log(failures ? `${failures} checks failed` : "all checks passed");
process.exit(failures ? 1 : 0);
