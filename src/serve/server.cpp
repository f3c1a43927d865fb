// `retort serve` composed (retort/serve.h): the transport, the guard chain and the route
// families. A new family of routes is one file and one line in kRouteFamilies.
#include "retort/serve.h"

#include "retort/tokenizer.h"
#include "retort/watermark_store.h"
#include "serve/routes.h"

namespace retort {

using namespace serve;

namespace {

constexpr RouteFamily kRouteFamilies[] = {
    add_model_routes,
    add_completion_routes,
    add_classify_routes,
    add_admin_routes,
    add_taxii_routes,
    add_dashboard_routes,
};

http::TransportOptions transport_options(const ServeOptions& o) {
  http::TransportOptions t;
  t.host = o.host;
  t.port = o.port;
  t.max_body = o.max_body;
  t.header_timeout = o.header_timeout;
  t.body_timeout = o.body_timeout;
  t.idle_timeout = o.idle_timeout;
  t.max_connections = o.max_connections;
  t.max_connections_per_client = o.max_connections_per_client;
  // Threads for every request that may be in a model (a batch row each: workers x max_batch) or
  // wait for one (queue), and a few more for refusals, key management and model listings.
  t.threads = o.workers * o.max_batch + o.queue + 8;
  t.backlog = std::max<int64_t>(256, 4 * t.threads);
  return t;
}

// serve.watermark: the database's current key marks every language model's answers, and each
// marked model is recorded (detection reads its tokenizer, gamma and h from there).
void start_marking(Engine& engine, const ServeOptions& o, const std::shared_ptr<GuardDb>& db) {
  const WatermarkOptions& w = o.watermark;
  if (w.scheme == WatermarkScheme::None) return;
  check_watermark_options(w);
  WatermarkStore store(db);
  const StoredWatermarkKey key = store.require_current();
  engine.set_watermark(std::make_shared<const Watermark>(key.key, w), o.dawn_share, o.guard.mark_delta);
  for (const auto& m : engine.models())  // classifiers have no tokenizer: their mark is DAWN's
    store.record_serving({unix_now(), m->id, m->path, m->tokenizer ? m->tokenizer->fingerprint() : "", key.key.id, w});
}

}  // namespace

struct Server::Impl {
  Impl(std::shared_ptr<Engine> e, ServeOptions opt)
      : engine(std::move(e)), o(std::move(opt)), chain(o), context{*engine, chain, o, steady_now()}, transport(transport_options(o)) {
    start_marking(*engine, o, chain.db());
    engine->set_batching(o.max_batch, o.workers);
    for (RouteFamily add : kRouteFamilies) add(transport, context);
    transport.on_error([this](const http::Request& req, http::Response& res, const std::string& code, const std::string& message) {
      chain.transport_error(req, res, code, message);
    });
  }
  std::shared_ptr<Engine> engine;
  ServeOptions o;
  GuardChain chain;
  ServeContext context;
  http::Transport transport;
};

Server::Server(std::shared_ptr<Engine> engine, ServeOptions options)
    : impl_(std::make_unique<Impl>(std::move(engine), std::move(options))) {}
Server::~Server() = default;

bool Server::bind() { return impl_->transport.bind(); }
void Server::listen_after_bind() { impl_->transport.run(); }

void Server::listen() {
  if (!bind())
    fail("serve: cannot listen on ", impl_->o.host, ":", impl_->o.port, " (in use by another process, or not an address of this machine)");
  listen_after_bind();
}

void Server::stop() { impl_->transport.stop(); }
int Server::port() const { return impl_->transport.port(); }

}  // namespace retort
