// A bounded load test of `retort serve`: a fixed number of requests (or a time limit, whichever
// comes first) from a fixed number of concurrent connections, spread round-robin over keys.
// Prints one JSON object: requests/s, latency percentiles of the answered requests, and per key
// how many requests got which status and how many tokens the answers reported (usage).
// usage: node serve_load.mjs --base URL --keys K1,K2 --endpoint completions|classify --model M
//        [--requests 200] [--concurrency 8] [--seconds 60] [--max-tokens 16] [--pixels FILE.json]
// No npm packages: Node's own fetch (undici) keeps the client cheap next to the server.
import { readFileSync } from "node:fs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const base = args.base, model = args.model, endpoint = args.endpoint ?? "completions";
const keys = (args.keys ?? "").split(",").filter(Boolean);
const total = Number(args.requests ?? 200), concurrency = Number(args.concurrency ?? 8);
const seconds = Number(args.seconds ?? 60), maxTokens = Number(args["max-tokens"] ?? 16);
if (!base || !model || !keys.length) {
  console.error("usage: node serve_load.mjs --base URL --keys K1,K2 --endpoint completions|classify --model M [...]");
  process.exit(2);
}
const prompts = ["And God said", "In the beginning", "The LORD is my shepherd", "Blessed are the", "And it came to pass"];
const pixels = args.pixels ? JSON.parse(readFileSync(args.pixels, "utf8")) : null;  // array of images (784 values each)
const body = (i) => endpoint === "classify"
  ? { model, input: pixels[i % pixels.length], top_k: 3 }
  : { model, prompt: prompts[i % prompts.length], max_tokens: maxTokens, logprobs: 5, seed: i };

const perKey = keys.map(() => ({ statuses: {}, tokens: 0, answered: 0 }));
const latencies = [];
let next = 0, errors = 0;
const start = performance.now();
const deadline = start + seconds * 1000;

async function worker() {
  while (next < total && performance.now() < deadline) {
    const i = next++;
    const k = i % keys.length;
    const t0 = performance.now();
    try {
      const r = await fetch(`${base}/${endpoint}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${keys[k]}`, "Content-Type": "application/json" },
        body: JSON.stringify(body(i)),
      });
      const j = await r.json();
      const ms = performance.now() - t0;
      perKey[k].statuses[r.status] = (perKey[k].statuses[r.status] ?? 0) + 1;
      if (r.status === 200) {
        latencies.push(ms);
        perKey[k].answered++;
        perKey[k].tokens += j.usage?.total_tokens ?? 0;
      }
    } catch (e) {
      errors++;
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : null);
const sent = perKey.reduce((s, k) => s + Object.values(k.statuses).reduce((a, b) => a + b, 0), 0);
console.log(JSON.stringify({
  endpoint, model, concurrency, sent, answered: latencies.length, transport_errors: errors, seconds: elapsed,
  requests_per_second: sent / elapsed, answered_per_second: latencies.length / elapsed,
  p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99),
  per_key: perKey.map((k, i) => ({ key_prefix: keys[i].slice(0, 8), ...k })),
}));
