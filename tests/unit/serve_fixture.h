// A `retort serve` on a free loopback port for the serve tests: a tiny byte-level gpt served as
// "m", one key, its database in a temporary folder; stopped and joined when it goes.
#pragma once
#include <memory>
#include <string>
#include <thread>

#include "retort/guard.h"
#include "retort/serve.h"
#include "test_util.h"

namespace retort::testing {

// A byte-level gpt saved as a model folder with its tokenizer; returns the folder.
inline std::string save_tiny_lm(const TempDir& dir, int64_t context = 48) {
  LoadedModel m = tiny_gpt({{"vocab_size", 256}, {"max_seq_len", context}});
  std::filesystem::path p = dir / "lm";
  save_model(*m.model, m.spec, p);
  m.tokenizer->save(p);
  return p.string();
}

struct RunningServer {
  std::unique_ptr<Server> server;
  std::thread thread;
  std::string key;  // the key "test", in clear
  std::string db;
  ~RunningServer() {
    if (server) server->stop();
    if (thread.joinable()) thread.join();
  }
};

inline std::unique_ptr<RunningServer> start_server(const TempDir& dir, ServeOptions o, KeyLimits limits = {}) {
  auto r = std::make_unique<RunningServer>();
  o.port = 0;
  o.db = r->db = (dir / "serve.db").string();
  {
    KeyStore keys(std::make_shared<GuardDb>(o.db));
    r->key = keys.create("test", limits).second;
  }
  r->server = std::make_unique<Server>(
      std::make_shared<Engine>(std::vector<std::pair<std::string, std::string>>{{"m", save_tiny_lm(dir)}}, "cpu"), o);
  if (!r->server->bind()) throw Error("the test server cannot bind a loopback port");
  r->thread = std::thread([s = r->server.get()] { s->listen_after_bind(); });
  return r;
}

}  // namespace retort::testing
