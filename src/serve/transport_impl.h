// The transport's state shared by its two files (serve-private): transport.cpp (binding,
// accepting, routes) and connection.cpp (one connection's life). Not for the server's code.
#pragma once
#include <boost/asio.hpp>
#include <memory>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

#include "serve/handler_pool.h"
#include "serve/transport.h"

namespace retort::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct Route {
  std::string method;
  std::regex pattern;
  Handler handler;
  bool inline_ = false;
};

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

// "HTTP/1.1 200 OK\r\n" + headers, without the blank line.
std::string head_of(const Response& res, bool keep_alive, int version);
// Serves one accepted connection until it closes (connection.cpp); counted in t.open and
// t.per_client[addr] by the caller, uncounted by the connection when it closes.
void serve_connection(Transport::Impl& t, tcp::socket socket, std::string addr);

}  // namespace retort::http
