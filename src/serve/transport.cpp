// The HTTP/1.1 transport (transport.h): binding, accepting under connection caps, routes, and
// the event loop; one connection's life is in connection.cpp.
#include "serve/transport.h"

#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/beast/http.hpp>

#include "serve/transport_impl.h"

namespace retort::http {

namespace bhttp = boost::beast::http;

// ---- requests and responses ----------------------------------------------------------

std::string Request::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  return "";
}

void Response::erase_header(const std::string& name) {
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const auto& h) { return strcasecmp(h.first.c_str(), name.c_str()) == 0; }),
                headers.end());
}

void Response::set_header(const std::string& name, const std::string& value) {
  erase_header(name);
  headers.emplace_back(name, value);
}

void Response::set_content(std::string b, std::string type) {
  body = std::move(b);
  content_type = std::move(type);
}


// "HTTP/1.1 200 OK\r\n" + headers, without the blank line.
std::string head_of(const Response& res, bool keep_alive, int version) {
  std::string out = "HTTP/1.1 " + std::to_string(res.status) + " ";
  out += std::string(bhttp::obsolete_reason(bhttp::int_to_status(unsigned(res.status))));
  out += "\r\n";
  if (!res.content_type.empty()) out += "Content-Type: " + res.content_type + "\r\n";
  for (const auto& [k, v] : res.headers) out += k + ": " + v + "\r\n";
  // HTTP/1.1 keeps a connection unless told; HTTP/1.0 closes it unless told.
  if (!keep_alive) out += "Connection: close\r\n";
  else if (version == 10) out += "Connection: keep-alive\r\n";
  return out;
}

void Transport::Impl::refuse(tcp::socket& s, const std::string& message) {
  Request req;
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (!ec) req.remote_addr = ep.address().to_string();
  Response res;
  res.status = 503;
  res.set_content("{\"error\":{\"message\":\"" + message + "\",\"type\":\"server_error\",\"param\":null,\"code\":\"too_many_connections\"}}",
                  "application/json");
  res.set_header("Retry-After", "1");
  std::string out = head_of(res, false, 11) + "Content-Length: " + std::to_string(res.body.size()) + "\r\n\r\n" + res.body;
  // One non-blocking try: a client that does not read its refusal gets nothing more.
  ::send(s.native_handle(), out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  s.shutdown(tcp::socket::shutdown_both, ec);
  s.close(ec);
}

void Transport::Impl::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {  // out of descriptors, most likely: try again shortly instead of spinning
      retry.expires_after(std::chrono::milliseconds(50));
      retry.async_wait([this](error_code e) {
        if (!e) accept();
      });
      return;
    }
    error_code ep_ec;
    auto ep = s.remote_endpoint(ep_ec);
    std::string addr = ep_ec ? std::string() : ep.address().to_string();
    if (open >= o.max_connections) {
      refuse(s, "The server has " + std::to_string(open) + " connections open, its limit. Retry shortly.");
    } else if (per_client[addr] >= o.max_connections_per_client) {
      refuse(s, "Too many connections from " + addr + " (limit " + std::to_string(o.max_connections_per_client) + "). Close some and retry.");
    } else {
      ++open;
      ++per_client[addr];
      serve_connection(*this, std::move(s), addr);
    }
    accept();
  });
}

Transport::Transport(TransportOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

Transport::~Transport() {
  stop();
  if (impl_->pool) impl_->pool->stop();
}

void Transport::route(const std::string& method, const std::string& pattern, Handler handler, bool inline_) {
  impl_->routes.push_back({method, std::regex(pattern), std::move(handler), inline_});
}

void Transport::on_error(ErrorHandler handler) { impl_->on_error = std::move(handler); }

bool Transport::bind() {
  Impl& s = *impl_;
  error_code ec;
  tcp::resolver resolver(s.io);
  auto found = resolver.resolve(s.o.host, std::to_string(s.o.port), tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) return false;
  tcp::endpoint ep = found.begin()->endpoint();
  s.acceptor.open(ep.protocol(), ec);
  if (ec) return false;
  // SO_REUSEADDR only (a restart may bind beside old TIME_WAIT connections); never SO_REUSEPORT,
  // which would let a second server share the port and split the traffic.
  s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    s.acceptor.close(ignored);
    return false;
  }
  s.port = s.acceptor.local_endpoint(ec).port();
  return !ec;
}

int Transport::port() const { return impl_->port; }

void Transport::run() {
  Impl& s = *impl_;
  if (!s.acceptor.is_open()) return;
  s.pool = std::make_unique<Pool>(s.o.threads, s.o.backlog);
  s.accept();
  s.io.run();
  s.pool->stop();
}

void Transport::stop() {
  auto impl = impl_;
  // The handler holds the Impl weakly: one that never runs (the loop stopped first, or had
  // already returned) stays queued in impl->io, which the Impl owns, and a shared_ptr there kept
  // the Impl, its routes and its connections alive for ever (LeakSanitizer, make test-asan).
  asio::post(impl->io, [weak = std::weak_ptr<Impl>(impl)] {
    auto impl = weak.lock();
    if (!impl) return;
    error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  impl->io.stop();
}

}  // namespace retort::http
