// One connection of the transport (transport_impl.h), from its first byte to its close:
// wait for the first byte (idle deadline) -> header (header deadline, size limit, Content-Length
// checked against the body limit at once) -> optional "100 Continue" -> body (body deadline) ->
// handler (pool thread) -> answer -> the next request, which may already be buffered
// (pipelining: one request at a time, answers in order). While a handler runs the connection is
// not read; the handler's thread owns the socket until it posts the connection back to the
// event loop, so no two threads ever touch one socket.
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <optional>

#include "serve/transport_impl.h"

namespace retort::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

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
    if (!parser) return r;
    const auto& m = parser->get();
    // The request line is known once parsed, even when a header after it is refused (a
    // Content-Length over max_body): route families shape their errors by path.
    if (parser->is_header_done() || !m.target().empty()) {
      r.method = std::string(m.method_string());
      std::string target(m.target());
      size_t q = target.find('?');
      r.path = target.substr(0, q);
      if (q != std::string::npos) r.query = target.substr(q + 1);
    }
    if (parser->is_header_done()) {
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

void serve_connection(Transport::Impl& t, tcp::socket socket, std::string addr) {
  std::make_shared<Session>(t, std::move(socket), std::move(addr))->start();
}

}  // namespace retort::http
