// retort serve against hostile clients on loopback, over raw sockets: bodies nested 100,000
// deep, numbers out of range, pipelined and HTTP/1.0 keep-alive requests, a second server on
// the same port, declared lengths above the limit, slow clients, connection caps, and usage
// that always equals what the audit rows settled.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "retort/guard.h"
#include "retort/serve.h"
#include "serve_fixture.h"
#include "test_util.h"

namespace retort {
namespace {

using nlohmann::json;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

using Running = testing::RunningServer;

// Limits are no shield: the crash came before them.
std::unique_ptr<Running> start(const TempDir& dir, ServeOptions o) { return testing::start_server(dir, o, {1000, 0, 100000}); }

// A TCP connection to the server, from `source` (any 127.x.y.z address).
struct Conn {
  int fd = -1;
  std::string buffered;
  Conn(int port, const char* source = "127.0.0.1") {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, source, &a.sin_addr);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    a.sin_port = htons(uint16_t(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Conn() {
    if (fd >= 0) ::close(fd);
  }
  bool ok = false;
  bool send(const std::string& s) { return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); }
  // More bytes within `seconds`; false on timeout or close.
  bool more(double seconds) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, int(seconds * 1000)) <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffered.append(buf, size_t(n));
    return true;
  }
  // One response (Content-Length or chunked); status 0 when none came within `seconds`.
  struct Answer {
    int status = 0;
    std::string head, body;
  };
  Answer read(double seconds = 30) {
    Answer a;
    const auto end = Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
    auto left = [&] { return std::chrono::duration<double>(end - Clock::now()).count(); };
    size_t h;
    while ((h = buffered.find("\r\n\r\n")) == std::string::npos)
      if (left() <= 0 || !more(left())) return a;
    a.head = buffered.substr(0, h);
    buffered.erase(0, h + 4);
    a.status = std::atoi(a.head.c_str() + 9);
    size_t cl = a.head.find("Content-Length: ");
    if (cl != std::string::npos) {
      size_t len = std::stoul(a.head.substr(cl + 16));
      while (buffered.size() < len)
        if (left() <= 0 || !more(left())) return Answer{};
      a.body = buffered.substr(0, len);
      buffered.erase(0, len);
    }
    return a;
  }
};

std::string request(const std::string& method, const std::string& path, const std::string& key, const std::string& body = "",
                    const std::string& version = "1.1", const std::string& extra = "") {
  std::string r = method + " " + path + " HTTP/" + version + "\r\nHost: 127.0.0.1\r\n";
  if (!key.empty()) r += "Authorization: Bearer " + key + "\r\n";
  if (!body.empty() || method == "POST") r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return r + extra + "\r\n" + body;
}

Conn::Answer once(const Running& r, const std::string& req, double seconds = 30) {
  Conn c(r.server->port());
  c.send(req);
  return c.read(seconds);
}

bool healthy(const Running& r, double seconds = 1) {
  Conn::Answer a = once(r, request("GET", "/health", ""), seconds);
  return a.status == 200 && a.body.find("\"status\":\"ok\"") != std::string::npos;
}

TEST(ServeHostile, BodiesNested100000DeepAre400sAndTheServerStaysUp) {
  TempDir dir;
  auto r = start(dir, {});
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string& body :
       {R"({"model":"m","max_tokens":2,"messages":[{"role":"user","content":"hi","x":)" + deep + "}]}",
        R"({"model":"m","max_tokens":2,"messages":[{"role":"user","content":)" + deep + "}]}",
        R"({"model":"m","prompt":)" + deep + "}"}) {
    const char* path = body.find("messages") != std::string::npos ? "/v1/chat/completions" : "/v1/completions";
    Conn::Answer a = once(*r, request("POST", path, r->key, body));
    ASSERT_EQ(a.status, 400) << a.body;
    json e = json::parse(a.body)["error"];
    EXPECT_EQ(e["code"], "invalid_json");
    EXPECT_NE(e["message"].get<std::string>().find("nested more than 64"), std::string::npos) << e;
    EXPECT_TRUE(healthy(*r));
  }
  AuditLog audit(std::make_shared<GuardDb>(r->db));
  auto rows = audit.recent(10);
  ASSERT_EQ(rows.size(), 3u);  // each refusal audited, with its key
  for (const auto& row : rows) {
    EXPECT_EQ(row.status, 400);
    EXPECT_EQ(row.key_name, "test");
  }
}

TEST(ServeHostile, ANumberOutOfRangeIsA400NamingTheParameter) {
  TempDir dir;
  auto r = start(dir, {});
  Conn::Answer a = once(*r, request("POST", "/v1/completions", r->key, R"({"model":"m","prompt":"hi","max_tokens":1e999})"));
  ASSERT_EQ(a.status, 400) << a.body;
  EXPECT_EQ(json::parse(a.body)["error"]["param"], "max_tokens") << a.body;
  a = once(*r, request("POST", "/v1/completions", r->key, R"({"model":"m","prompt":"hi","temperature":-1e400})"));
  ASSERT_EQ(a.status, 400) << a.body;
  EXPECT_EQ(json::parse(a.body)["error"]["param"], "temperature") << a.body;
}

TEST(ServeHostile, ATemperatureNearZeroSamplesGreedilyInsteadOf500) {
  TempDir dir;
  auto r = start(dir, {});
  // 1e-320 > 0 passes the range check; logits / 1e-320 overflowed to inf and the sampler threw (500).
  Conn::Answer tiny = once(*r, request("POST", "/v1/completions", r->key,
                                       R"({"model":"m","prompt":[65,110,100],"max_tokens":4,"temperature":1e-320,"seed":3})"));
  ASSERT_EQ(tiny.status, 200) << tiny.body;
  Conn::Answer greedy = once(*r, request("POST", "/v1/completions", r->key,
                                         R"({"model":"m","prompt":[65,110,100],"max_tokens":4,"temperature":0,"seed":3})"));
  ASSERT_EQ(greedy.status, 200) << greedy.body;
  const std::string a = json::parse(tiny.body)["choices"][0]["text"], b = json::parse(greedy.body)["choices"][0]["text"];
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(a, b);
}

TEST(ServeHostile, PipelinedRequestsAreEachAnsweredInOrder) {
  TempDir dir;
  auto r = start(dir, {});
  Conn c(r->server->port());
  const std::string completion = R"({"model":"m","prompt":"In the","max_tokens":3,"seed":1})";
  std::string all = request("GET", "/health", "") + request("POST", "/v1/completions", r->key, completion) +
                    request("GET", "/v1/models", r->key) + request("GET", "/nowhere", r->key) + request("GET", "/health", "");
  ASSERT_TRUE(c.send(all));  // one write: five requests back to back
  std::vector<int> statuses;
  std::vector<std::string> bodies;
  for (int i = 0; i < 5; ++i) {
    Conn::Answer a = c.read();
    statuses.push_back(a.status);
    bodies.push_back(a.body);
  }
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 200, 404, 200}));
  EXPECT_NE(bodies[0].find("\"status\":\"ok\""), std::string::npos);
  EXPECT_EQ(json::parse(bodies[1])["object"], "text_completion");
  EXPECT_EQ(json::parse(bodies[2])["object"], "list");
  EXPECT_EQ(json::parse(bodies[3])["error"]["code"], "unknown_url");
}

TEST(ServeHostile, Http10KeepAliveRequestsAreEachAnswered) {
  TempDir dir;
  auto r = start(dir, {});
  Conn c(r->server->port());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.send(request("GET", "/v1/models", r->key, "", "1.0", "Connection: keep-alive\r\n"))) << i;
    Conn::Answer a = c.read(5);
    ASSERT_EQ(a.status, 200) << "request " << i << " on one HTTP/1.0 keep-alive connection";
    EXPECT_NE(a.head.find("Connection: keep-alive"), std::string::npos) << a.head;
  }
  // Without keep-alive HTTP/1.0 closes after the answer.
  ASSERT_TRUE(c.send(request("GET", "/v1/models", r->key, "", "1.0")));
  EXPECT_EQ(c.read(5).status, 200);
  EXPECT_FALSE(c.more(2));
}

TEST(ServeHostile, ASecondServerOnAUsedPortRefusesToStart) {
  TempDir dir;
  auto r = start(dir, {});
  ServeOptions o;
  o.port = r->server->port();
  o.db = (dir / "second.db").string();
  Server second(std::make_shared<Engine>(std::vector<std::pair<std::string, std::string>>{{"m", (dir / "lm").string()}}, "cpu"), o);
  EXPECT_FALSE(second.bind());
  try {
    second.listen();
    ADD_FAILURE() << "a second server listened on a used port";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(o.port)), std::string::npos) << e.what();
  }
  EXPECT_TRUE(healthy(*r));
}

TEST(ServeHostile, ADeclaredLengthAboveTheLimitIsRefusedAtOnce) {
  TempDir dir;
  ServeOptions o;
  o.max_body = 4096;
  auto r = start(dir, o);
  for (const char* length : {"1000000000", "4097"}) {
    Conn c(r->server->port());
    const auto t0 = Clock::now();
    c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + r->key +
           "\r\nContent-Type: application/json\r\nContent-Length: " + length + "\r\n\r\n{");
    Conn::Answer a = c.read(5);
    EXPECT_EQ(a.status, 413) << length;
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 2.0) << "413 came late for " << length;
    EXPECT_EQ(json::parse(a.body)["error"]["code"], "body_too_large");
  }
  Conn::Answer a = once(*r, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 5);
  EXPECT_EQ(a.status, 400) << "a negative Content-Length";
}

TEST(ServeHostile, SlowClientsCannotStarveTheServer) {
  TempDir dir;
  ServeOptions o;
  o.header_timeout = 3;
  auto r = start(dir, o);
  // 200 connections that each trickle a header byte at a time and never finish it.
  std::vector<std::unique_ptr<Conn>> slow;
  for (int i = 0; i < 200; ++i) {
    slow.push_back(std::make_unique<Conn>(r->server->port()));
    ASSERT_TRUE(slow.back()->ok) << i;
    slow.back()->send("P");
  }
  for (int round = 0; round < 2; ++round) {
    for (auto& s : slow) s->send("O");
    const auto t0 = Clock::now();
    EXPECT_TRUE(healthy(*r, 1.0)) << "round " << round;
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.0);
    Conn::Answer a = once(*r, request("POST", "/v1/completions", r->key, R"({"model":"m","prompt":"hi","max_tokens":2})"), 10);
    EXPECT_EQ(a.status, 200) << a.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // Past the header deadline each slow connection gets its 408 and is closed.
  std::this_thread::sleep_for(std::chrono::milliseconds(int(o.header_timeout * 1000)));
  int timed_out = 0;
  for (auto& s : slow) timed_out += s->read(2).status == 408;
  EXPECT_EQ(timed_out, 200);
}

TEST(ServeHostile, ConnectionsPerClientAddressAreCapped) {
  TempDir dir;
  ServeOptions o;
  o.max_connections_per_client = 4;
  auto r = start(dir, o);
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<Conn>(r->server->port(), "127.0.0.2"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Conn fifth(r->server->port(), "127.0.0.2");
  Conn::Answer a = fifth.read(5);
  EXPECT_EQ(a.status, 503) << "the fifth connection from 127.0.0.2";
  EXPECT_NE(a.body.find("too_many_connections"), std::string::npos) << a.body;
  Conn other(r->server->port(), "127.0.0.3");  // another address is served
  other.send(request("GET", "/health", ""));
  EXPECT_EQ(other.read(5).status, 200);
  held.clear();  // closing frees the address's share
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Conn again(r->server->port(), "127.0.0.2");
  again.send(request("GET", "/health", ""));
  EXPECT_EQ(again.read(5).status, 200);
}

TEST(ServeHostile, UsageEqualsWhatTheAuditRowsSettled) {
  TempDir dir;
  auto db = std::make_shared<GuardDb>(dir / "g.db");
  KeyStore keys(db);
  RateLimiter limiter(keys);
  AuditLog audit(db);
  ApiKey key = keys.create("k", {}).first;
  LimitDecision d = limiter.reserve(key, 50);
  AuditRow row;
  row.key_id = key.id;
  row.settled_tokens = limiter.settle_for_audit(d.reservation, 30);
  EXPECT_EQ(row.settled_tokens, 30);
  EXPECT_EQ(keys.find("k")->used_tokens, 0) << "nothing durable before the audit row";
  EXPECT_EQ(limiter.settle_for_audit(d.reservation, 30), 0) << "settled twice";
  audit.append(row);
  EXPECT_EQ(keys.find("k")->used_tokens, 30);
  EXPECT_EQ(audit.count(), 1);
}

}  // namespace
}  // namespace retort
