// `retort serve`: models behind OpenAI's HTTP API, with keys, limits and an audit log.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "common.h"
#include "retort/error.h"
#include "retort/runtime.h"
#include "retort/serve.h"

namespace retort::cli {

void register_serve(CLI::App& app) {
  static ConfigArgs config;
  static std::vector<std::string> models;
  static ServeOptions o;
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve models over OpenAI's HTTP API (any OpenAI client works against it).\n"
      "Routes: GET /v1/models, POST /v1/completions (prompt as text or token ids, max_tokens, temperature,\n"
      "top_p, n, stop, seed, logprobs <= 20, echo, stream), POST /v1/chat/completions (messages, logprobs,\n"
      "top_logprobs, stream), POST /v1/classify (classifiers: pixel values 0..255, top_k), GET /health,\n"
      "GET /v1/models/ID/tokenizer (so `retort distill --teacher openai:URL` can share the tokenizer), and\n"
      "/v1/admin/keys (GET, POST, DELETE/NAME) for admin keys.\n"
      "Every /v1 request needs 'Authorization: Bearer KEY' (`retort keys create`), passes the key's limits\n"
      "(requests and tokens per minute, total quota: 429 with Retry-After beyond them) and leaves one row in\n"
      "the audit log of --db, written before the answer is sent. A full queue answers 503 with Retry-After.\n"
      "Batching: concurrent completions of a gpt run as one batch (--max-batch rows, --workers batches at once),\n"
      "each request sampled with its own seed: the same tokens as alone. Concurrent /v1/classify calls share\n"
      "a forward pass, and audit rows that arrive together are committed together (each before its answer).\n"
      "Hostile clients: JSON bodies nested deeper than 64 levels are refused (400) while parsing; a request's\n"
      "header must arrive within --header-timeout and its body within --body-timeout (408); a Content-Length\n"
      "above --max-body is refused at once (413); connections are capped per client address. Pipelined and\n"
      "HTTP/1.0 keep-alive requests are answered in order. A port in use is an error, never shared.\n"
      "Watermarks: --set serve.watermark=kgw|gumbel marks every language model's answers with the database's\n"
      "current key (`retort guard keys rotate`); logprobs (echoed prompts too) are those of the marked\n"
      "distribution; classifiers answer a keyed share (serve.dawn_share) of inputs with a keyed wrong class\n"
      "(DAWN), recorded in the database; `retort guard detect` and `retort guard verify` test text and\n"
      "suspect models for these marks.\n"
      "Campaign detection: --config configs/guard.toml (guard.detect=true) scores every key and cluster of keys\n"
      "off the request path and answers in steps (observe, throttle, strip logprobs, mark harder, block: 403\n"
      "key_blocked), each a durable row; `retort guard campaigns|explain|act` read and override them. Operators'\n"
      "rows are enforced with detection off too.\n"
      "Threat intel: --set intel.taxii=true serves TAXII 2.1 at /taxii2/ (discovery, collections\n"
      "distillation-campaigns and partner-reports; rights by `retort intel grant`) and publishes the guard's\n"
      "findings there as STIX 2.1; --set intel.pull=true pulls the partners of `retort intel partner add` and\n"
      "enforces their indicators (intel.act.*) from a matching key's first request.\n"
      "Dashboard: GET /dashboard#key=ADMIN_KEY (keys, campaigns, actions, verifications, intel; built in).\n"
      "Examples: KEY=$(retort keys create --name alice --rpm 60 --tpm 20000 --db serve.db)\n"
      "          retort serve --model kjv=runs/demo-lm/students/distilled --port 8080 --db serve.db\n"
      "          curl -H \"Authorization: Bearer $KEY\" localhost:8080/v1/completions \\\n"
      "               -d '{\"model\":\"kjv\",\"prompt\":\"And God said\",\"max_tokens\":20,\"logprobs\":5}'");
  add_config_args(cmd, config);
  cmd->add_option("--model", models,
                  "[NAME=]PATH: a retort model or run folder, or torchscript:FILE.pt (repeatable); served as NAME,\n"
                  "by default the folder's name (the run's name for a run's model/ folder)")
      ->required();
  cmd->add_option("--host", o.host, "address to listen on (0.0.0.0: every interface)")->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port (0: any free port, printed at start)")->capture_default_str();
  cmd->add_option("--db", o.db, "SQLite database of keys, usage and the audit log (created if missing)")->capture_default_str();
  cmd->add_option("--workers", o.workers, "model executions at once: batches of generation, each on its own thread")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--max-batch", o.max_batch,
                  "rows per generation batch (a request's n choices are n rows): concurrent completions of a gpt\n"
                  "join a running batch between two tokens (continuous batching); 1: each request runs alone")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--queue", o.queue, "requests that may wait for a worker; beyond that 503 + Retry-After")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--max-body", o.max_body, "largest request body in bytes (a larger Content-Length: 413 at once)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 34));
  // Slow or hostile clients: deadlines for reading a request, caps on connections.
  cmd->add_option("--header-timeout", o.header_timeout, "seconds from a request's first byte to its last header byte (408 beyond)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--body-timeout", o.body_timeout, "seconds to read a request body once its header is in (408 beyond)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--idle-timeout", o.idle_timeout, "seconds a kept-alive connection may wait for its next request")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--max-connections", o.max_connections, "open connections in all (beyond: 503 and close)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--max-connections-per-client", o.max_connections_per_client,
                  "open connections from one client address (beyond: 503 and close)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->callback([] {
    const Options run_options = read_options(resolve_config(config));
    o.watermark = run_options.watermark;
    o.dawn_share = run_options.dawn_share;
    o.guard = run_options.guard;
    o.intel = run_options.intel;
    setup_runtime(run_options.run);
    // Workers run side by side: each gets its share of the intra-op threads, so that together
    // they use the cores once instead of oversubscribing them.
    const int per_worker = std::max(1, at::get_num_threads() / int(o.workers));
    at::set_num_threads(per_worker);
    std::vector<std::pair<std::string, std::string>> specs;
    for (const auto& m : models) {
      size_t eq = m.find('=');
      bool named = eq != std::string::npos && m.rfind("torchscript:", 0) != 0;
      specs.emplace_back(named ? m.substr(0, eq) : "", named ? m.substr(eq + 1) : m);
    }
    auto engine = std::make_shared<Engine>(specs, run_options.run.device);
    Server server(engine, o);
    if (!server.bind())
      fail("serve: cannot listen on ", o.host, ":", o.port,
           " (in use by another process, perhaps another retort serve, or not an address of this machine)");
    for (const auto& m : engine->models())
      std::fprintf(stderr, "serve: %s (%s) from %s\n", m->id.c_str(), m->kind.c_str(), m->path.c_str());
    std::fprintf(stderr,
                 "serve: listening on http://%s:%d/v1 (database %s, %lld workers of %d threads, batches of %lld rows, queue %lld); "
                 "Ctrl-C stops\n",
                 o.host.c_str(), server.port(), o.db.c_str(), static_cast<long long>(o.workers), per_worker,
                 static_cast<long long>(o.max_batch), static_cast<long long>(o.queue));
    std::printf("%d\n", server.port());  // the port alone on stdout, for scripts
    std::fflush(stdout);
    std::atomic<bool> ended{false};
    std::thread watcher([&] {  // Ctrl-C (or SIGTERM) -> stop accepting, finish what runs
      while (!interrupt_requested() && !ended) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      server.stop();
    });
    server.listen_after_bind();
    ended = true;
    watcher.join();
    const Engine::BatchStats batches = engine->batch_stats();
    if (batches.steps > 0)
      std::fprintf(stderr, "serve: %lld generation steps in batches, %.1f rows each on average, %lld at most\n",
                   static_cast<long long>(batches.steps), double(batches.rows) / double(batches.steps),
                   static_cast<long long>(batches.largest));
    std::fprintf(stderr, "serve: stopped\n");
  });
}

}  // namespace retort::cli
