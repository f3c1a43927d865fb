// The HTTP/1.1 transport (transport.h): one event-loop thread reads every connection under
// deadlines with Boost.Beast's parser; whole requests go to a bounded pool of handler threads.
//
// A connection's life: wait for the first byte (idle deadline) -> header (header deadline,
// size limit, Content-Length checked against the body limit at once) -> optional
// "100 Continue" -> body (body deadline) -> handler (pool thread) -> answer -> the next request,
// which may already be in the buffer (pipelining: one request at a time, answers in order).
// While a handler runs, its connection is not read; the handler thread owns the socket until
// it posts the connection back to the event loop, so no two threads ever touch one socket.
#include "transport.h"

#include <poll.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace retort::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

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

namespace {

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

// Handler threads with a bounded queue of waiting requests.
class Pool {
 public:
  Pool(int64_t threads, int64_t capacity) : capacity_(size_t(capacity)) {
    for (int64_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~Pool() { stop(); }
  bool submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() >= capacity_) return false;
    queue_.push_back(std::move(task));
    cv_.notify_one();
    return true;
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }
  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

struct Route {
  std::string method;
  std::regex pattern;
  Handler handler;
  bool inline_ = false;
};

}  // namespace

struct Transport::Impl {
  explicit Impl(TransportOptions opt) : o(std::move(opt)), acceptor(io), retry(io) {}
  TransportOptions o;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::steady_timer retry;  // accept again after running out of descriptors
  std::vector<Route> routes;
  ErrorHandler on_error;
  std::unique_ptr<Pool> pool;
  std::unordered_map<std::string, int64_t> per_client;  // event loop only
  int64_t open = 0;                                      // event loop only
  int port = -1;

  void accept();
  void refuse(tcp::socket& s, const std::string& message);
  // The error handler's answer, or a bare one when there is no handler (or it failed).
  Response error_response(const Request& req, int status, const std::string& code, const std::string& message) {
    Response res;
    res.status = status;
    try {
      if (on_error) on_error(req, res, code, message);
    } catch (...) {
    }
    if (res.body.empty() && !res.stream) res.set_content(message + "\n", "text/plain");
    res.status = status;
    return res;
  }
};

namespace {

// One connection. Lives on the event loop, except while a handler thread owns it.
struct Session : std::enable_shared_from_this<Session> {
  Session(Transport::Impl& t_, tcp::socket s, std::string addr_)
      : t(t_), socket(std::move(s)), timer(t_.io), addr(std::move(addr_)) {}

  Transport::Impl& t;
  tcp::socket socket;
  asio::steady_timer timer;
  beast::flat_buffer buffer;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  std::string addr;
  uint64_t deadline_id = 0;  // which arm() a firing timer belongs to
  bool timed_out = false, closed = false;

  // Cancels the pending read after `seconds`; the read's handler then sees timed_out.
  void arm(double seconds) {
    timed_out = false;
    const uint64_t id = ++deadline_id;
    timer.expires_after(std::chrono::milliseconds(int64_t(seconds * 1000)));
    timer.async_wait([self = shared_from_this(), id](error_code ec) {
      if (ec || id != self->deadline_id) return;
      self->timed_out = true;
      error_code ignored;
      self->socket.cancel(ignored);
    });
  }
  void disarm() {
    ++deadline_id;
    timer.cancel();
  }

  void start() {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // headers and body leave in separate writes
    next();
  }

  // The next request: wait (idle deadline) for its first byte unless it is already buffered.
  void next() {
    parser.emplace();
    parser->header_limit(uint32_t(t.o.max_header));
    parser->body_limit(uint64_t(t.o.max_body));
    if (buffer.size() > 0) return read_header();
    arm(t.o.idle_timeout);
    socket.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
      self->disarm();
      if (ec || self->timed_out) return self->close();
      self->read_header();
    });
  }

  void read_header() {
    arm(t.o.header_timeout);
    bhttp::async_read_header(socket, buffer, *parser, [self = shared_from_this()](error_code ec, size_t) {
      self->disarm();
      self->on_header(ec);
    });
  }

  Request partial_request() const {
    Request r;
    r.remote_addr = addr;
    if (parser && parser->is_header_done()) {
      const auto& m = parser->get();
      r.method = std::string(m.method_string());
      std::string target(m.target());
      size_t q = target.find('?');
      r.path = target.substr(0, q);
      if (q != std::string::npos) r.query = target.substr(q + 1);
      r.version = int(m.version());
      for (const auto& f : m) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    return r;
  }

  // A read failed: answer what deserves an answer, then close.
  void on_read_error(error_code ec, const char* phase) {
    if (timed_out) {
      if (parser->got_some() || buffer.size() > 0)
        return fail(408, "request_timeout",
                    std::string("The request's ") + phase + " did not arrive within " +
                        std::to_string(int64_t(phase[0] == 'h' ? t.o.header_timeout : t.o.body_timeout)) + " s");
      return close();
    }
    if (ec == bhttp::error::body_limit)
      return fail(413, "body_too_large", "The request body is larger than the limit of " + std::to_string(t.o.max_body) + " bytes");
    if (ec == bhttp::error::header_limit)
      return fail(431, "header_too_large", "The request line and headers are larger than " + std::to_string(t.o.max_header) + " bytes");
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == bhttp::error::partial_message)
      return close();
    fail(400, "malformed_request", "Malformed HTTP request: " + ec.message());
  }

  void on_header(error_code ec) {
    if (ec || timed_out) return on_read_error(ec, "header");
    const auto& m = parser->get();
    auto expect = m.find(bhttp::field::expect);
    if (expect != m.end() && beast::iequals(expect->value(), "100-continue") && !parser->is_done()) {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      arm(t.o.write_timeout);
      asio::async_write(socket, asio::buffer(*cont), [self = shared_from_this(), cont](error_code ec2, size_t) {
        self->disarm();
        if (ec2 || self->timed_out) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser->is_done()) return on_body(error_code{});
    arm(t.o.body_timeout);
    bhttp::async_read(socket, buffer, *parser, [self = shared_from_this()](error_code ec, size_t) {
      self->disarm();
      self->on_body(ec);
    });
  }

  void on_body(error_code ec) {
    if (ec || timed_out) return on_read_error(ec, "body");
    Request req = partial_request();
    const bool keep_alive = parser->get().keep_alive();
    req.body = std::move(parser->get().body());
    parser.reset();

    const Route* route = nullptr;
    for (const Route& r : t.routes) {
      std::smatch sm;
      if (r.method != req.method || !std::regex_match(req.path, sm, r.pattern)) continue;
      for (const auto& s : sm) req.matches.push_back(s.str());
      route = &r;
      break;
    }
    auto self = shared_from_this();
    if (route && route->inline_) {
      Response res;
      run(*route, req, res);
      return respond(std::move(res), keep_alive, req.version);
    }
    auto shared_req = std::make_shared<Request>(std::move(req));
    bool queued = t.pool->submit([self, route, shared_req, keep_alive] {
      Response res;
      if (route) self->run(*route, *shared_req, res);
      else res = self->t.error_response(*shared_req, 404, "unknown_url",
                                        "Unknown request URL: " + shared_req->method + " " + shared_req->path);
      if (res.stream) return self->stream(res, keep_alive, shared_req->version);
      asio::post(self->t.io, [self, res = std::move(res), keep_alive, v = shared_req->version]() mutable {
        self->respond(std::move(res), keep_alive, v);
      });
    });
    if (!queued) {
      Response res = t.error_response(*shared_req, 503, "server_busy", "The server is busy: every handler thread is taken. Retry shortly.");
      res.set_header("Retry-After", "1");
      respond(std::move(res), false, shared_req->version);
    }
  }

  void run(const Route& route, const Request& req, Response& res) {
    try {
      route.handler(req, res);
    } catch (const std::exception& e) {
      res = t.error_response(req, 500, "server_error", e.what());
    } catch (...) {
      res = t.error_response(req, 500, "server_error", "unknown error");
    }
  }

  // A whole answer, written by the event loop; then the next request or a close.
  void respond(Response res, bool keep_alive, int version) {
    auto out = std::make_shared<std::string>(head_of(res, keep_alive, version));
    *out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n\r\n";
    *out += res.body;
    arm(t.o.write_timeout);
    asio::async_write(socket, asio::buffer(*out), [self = shared_from_this(), out, keep_alive](error_code ec, size_t) {
      self->disarm();
      if (ec || self->timed_out) return self->close();
      if (keep_alive) return self->next();
      self->linger();
    });
  }

  void fail(int status, const std::string& code, const std::string& message) {
    Request req = partial_request();
    respond(t.error_response(req, status, code, message), false, req.version ? req.version : 11);
  }

  // ---- streamed answers, written by the handler thread that owns the connection ----

  struct Sink : ChunkSink {
    Session& s;
    bool chunked, ok = true;
    Sink(Session& s_, bool chunked_) : s(s_), chunked(chunked_) {}
    bool raw(const std::string& data) {
      if (!ok) return false;
      const int fd = s.socket.native_handle();
      size_t sent = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(s.t.o.write_timeout * 1000));
      while (sent < data.size()) {
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
          sent += size_t(n);
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
          pollfd p{fd, POLLOUT, 0};
          if (left > 0 && ::poll(&p, 1, int(left)) >= 0 && !(p.revents & (POLLERR | POLLHUP))) continue;
        }
        return ok = false;
      }
      return true;
    }
    bool write(const std::string& data) override {
      if (data.empty()) return ok;
      if (!chunked) return raw(data);
      char size[20];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      return raw(size + data + "\r\n");
    }
    bool writable() const override { return ok; }
  };

  void stream(Response& res, bool keep_alive, int version) {
    // HTTP/1.0 has no chunked encoding: the body then ends with the connection.
    const bool chunked = version != 10;
    keep_alive = keep_alive && chunked;
    std::string head = head_of(res, keep_alive, version);
    if (chunked) head += "Transfer-Encoding: chunked\r\n";
    head += "\r\n";
    Sink sink(*this, chunked);
    sink.raw(head);
    res.stream(sink);  // always called: the stream accounts for its request
    if (chunked) sink.raw("0\r\n\r\n");
    const bool again = keep_alive && sink.ok;
    asio::post(t.io, [self = shared_from_this(), again] { again ? self->next() : self->linger(); });
  }

  // Closes after letting the client read the answer: stop sending, drain what it still sends
  // (closing with unread input would reset the connection and could lose the answer).
  void linger() {
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    arm(2);
    auto scratch = std::make_shared<std::array<char, 4096>>();
    drain(scratch);
  }
  void drain(std::shared_ptr<std::array<char, 4096>> scratch) {
    socket.async_read_some(asio::buffer(*scratch), [self = shared_from_this(), scratch](error_code ec, size_t) {
      if (ec || self->timed_out) {
        self->disarm();
        return self->close();
      }
      self->drain(scratch);
    });
  }

  void close() {
    if (closed) return;
    closed = true;
    disarm();
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    --t.open;
    auto it = t.per_client.find(addr);
    if (it != t.per_client.end() && --it->second <= 0) t.per_client.erase(it);
  }
};

}  // namespace

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
      std::make_shared<Session>(*this, std::move(s), addr)->start();
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
  asio::post(impl->io, [impl] {
    error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  impl->io.stop();
}

}  // namespace retort::http
