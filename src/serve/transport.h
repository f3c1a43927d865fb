// The HTTP/1.1 transport of `retort serve` (serve-private): sockets, request parsing with
// deadlines and limits, keep-alive and pipelining, routes, and a pool of handler threads.
// Nothing here knows about models, keys or OpenAI; the server registers routes on it.
//
// Why not cpp-httplib: it gives every connection a pool thread from its first byte, so a few
// dozen clients that send one header byte every few seconds hold every thread; it has no
// deadline for a whole header or body, answers a too-large Content-Length only after reading,
// drops pipelined requests, and binds with SO_REUSEPORT (a second server on a used port starts).
// Here one event-loop thread (Boost.Asio) reads every connection under a header and a body
// deadline with Boost.Beast's parser (Debian's libboost1.74-dev); only whole requests reach the
// handler threads, so slow clients cost a socket and a buffer, never a thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace retort::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;   // after '?', undecoded
  int version = 11;    // 10 or 11
  HeaderList headers;
  std::string body;
  std::string remote_addr;
  std::vector<std::string> matches;  // the route's captures; matches[0] is the whole path
  // The first header of that name (case-insensitive), "" when absent.
  std::string header(const std::string& name) const;
};

// A streamed body's writer: each write() is one chunk; false once the client is gone.
class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  virtual bool write(const std::string& data) = 0;
  virtual bool writable() const = 0;
};

struct Response {
  int status = 200;
  HeaderList headers;
  std::string content_type;
  std::string body;
  // Set for a streamed answer: called once after the handler returns, on the same thread,
  // whether or not the client is still there (so it can always account for the request).
  std::function<void(ChunkSink&)> stream;

  void set_header(const std::string& name, const std::string& value);
  void erase_header(const std::string& name);
  void set_content(std::string body, std::string type);
};

using Handler = std::function<void(const Request&, Response&)>;

// What the transport answers by itself (unknown route, body too large, malformed request,
// too many connections): the server shapes the body and may audit it. `req` holds what was
// parsed (method and path may be empty).
using ErrorHandler = std::function<void(const Request& req, Response& res, const std::string& code, const std::string& message)>;

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port
  int64_t max_body = 1 << 20;               // bytes; a larger Content-Length is refused at once (413)
  int64_t max_header = 16 << 10;            // bytes of request line + headers (431 above)
  double header_timeout = 10;               // seconds from a request's first byte to its last header byte (408)
  double body_timeout = 30;                 // seconds for the body once the header is in (408)
  double idle_timeout = 5;                  // seconds a kept-alive connection may wait for its next request
  double write_timeout = 30;                // seconds one write may wait for the client to read
  int64_t max_connections = 4096;           // open connections in all
  int64_t max_connections_per_client = 256; // from one remote address
  int64_t threads = 16;                     // handler threads
  int64_t backlog = 256;                    // whole requests waiting for a handler thread (503 beyond)
};

class Transport {
 public:
  explicit Transport(TransportOptions options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // `pattern` is a regular expression matched against the whole path. An `inline_` route runs
  // on the event loop itself: only for cheap answers that must come even when every handler
  // thread is busy (/health).
  void route(const std::string& method, const std::string& pattern, Handler handler, bool inline_ = false);
  void on_error(ErrorHandler handler);

  // Binds without SO_REUSEPORT, so a port in use is refused. False when it cannot bind.
  bool bind();
  int port() const;
  void run();   // serves until stop(); blocking
  void stop();  // from any thread

 struct Impl;  // transport_impl.h (the transport's own files only)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace retort::http
