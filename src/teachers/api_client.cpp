// The HTTP side of the openai: teacher: a thread-safe client with retries, Retry-After and a
// request/token budget, and the endpoint's published tokenizer. The endpoint itself comes from
// the openai: source (source_openai.cpp).
// What is asked of the endpoint (top-k harvest, written text) lives in api_harvest.cpp.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "retort/api_teacher.h"
#include "retort/error.h"
#include "retort/runtime.h"
#include "teachers/api_answers.h"

namespace retort {

namespace {

constexpr double kMaxBackoff = 30;  // seconds: exponential backoff without Retry-After

bool retryable_status(int status) {
  return status == 408 || status == 409 || status == 429 || status >= 500;
}

bool stop_asked(const ApiEndpoint& e) { return interrupt_requested() || (e.stop && e.stop->load()); }

// Sleeps `seconds` in short slices so that Ctrl-C (or the endpoint's stop) is not kept waiting on
// a long backoff.
void interruptible_sleep(double seconds, const std::string& what, const ApiEndpoint& e) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (stop_asked(e)) throw Interrupted(cat(what, ": interrupted while waiting"));
    std::this_thread::sleep_for(std::min<std::chrono::duration<double>>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
}

}  // namespace

// ---- the client ----------------------------------------------------------------------------

// httplib::Client is not safe for concurrent requests, so each request borrows one from a
// small pool (kept alive between requests) and gives it back.
struct ApiClient::Impl {
  std::string origin;  // "http://host:port"
  std::string prefix;  // "/v1"
  std::mutex mutex;
  std::vector<std::unique_ptr<httplib::Client>> idle;
  std::mutex pace_mutex;
  std::chrono::steady_clock::time_point next_send{};  // pacing: the earliest start of the next send

  std::unique_ptr<httplib::Client> borrow(const ApiEndpoint& e) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<httplib::Client>(origin);
    const auto sec = static_cast<time_t>(e.timeout);
    const auto usec = static_cast<time_t>((e.timeout - double(sec)) * 1e6);
    c->set_connection_timeout(std::min<time_t>(sec, 30), sec >= 30 ? 0 : usec);
    c->set_read_timeout(sec, usec);
    c->set_write_timeout(sec, usec);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);  // small JSON requests: no Nagle delay on a kept-alive connection
    if (!e.api_key.empty()) c->set_bearer_token_auth(e.api_key);
    if (!e.headers.empty()) {
      httplib::Headers h;
      for (const auto& [name, value] : e.headers) h.emplace(name, value);
      c->set_default_headers(h);
    }
    return c;
  }
  void give_back(std::unique_ptr<httplib::Client> c) {
    std::lock_guard<std::mutex> lock(mutex);
    idle.push_back(std::move(c));
  }
};

ApiClient::ApiClient(ApiEndpoint endpoint)
    : impl_(std::make_unique<Impl>()), endpoint_(std::move(endpoint)) {
  std::string& url = endpoint_.base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos ||
      (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0))
    fail("API endpoint '", url,
         "' must be an http:// or https:// URL, e.g. http://127.0.0.1:8080/v1");
  const size_t slash = url.find('/', scheme + 3);
  impl_->origin = url.substr(0, slash);
  impl_->prefix = slash == std::string::npos ? "" : url.substr(slash);
  if (endpoint_.concurrency < 1) endpoint_.concurrency = 1;
  if (endpoint_.max_retries < 0) endpoint_.max_retries = 0;
}

ApiClient::~ApiClient() = default;

nlohmann::json ApiClient::get(const std::string& path) { return request("GET", path, nullptr); }

nlohmann::json ApiClient::post(const std::string& path, const nlohmann::json& body) {
  return request("POST", path, &body);
}

nlohmann::json ApiClient::request(const char* method, const std::string& path,
                                  const nlohmann::json* body) {
  const std::string target = impl_->prefix + "/" + path;
  const std::string what = cat(method, " ", endpoint_.base_url, "/", path);
  const std::string payload =
      body ? body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : "";
  for (int64_t attempt = 0;; ++attempt) {
    if (stop_asked(endpoint_)) throw Interrupted(cat(what, ": stopped before sending"));
    if (endpoint_.min_interval > 0) {  // pacing: each send starts min_interval after the last one
      std::chrono::steady_clock::time_point at;
      {
        std::lock_guard<std::mutex> lock(impl_->pace_mutex);
        at = std::max(impl_->next_send, std::chrono::steady_clock::now());
        impl_->next_send = at + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(endpoint_.min_interval));
      }
      interruptible_sleep(std::chrono::duration<double>(at - std::chrono::steady_clock::now()).count(), what,
                          endpoint_);
    }
    // The budget counts what is sent, retries included; checked before each send.
    if (endpoint_.max_requests > 0 && sent_.fetch_add(1) >= endpoint_.max_requests) {
      sent_.fetch_sub(1);
      throw BudgetExhausted(cat("teacher.api_max_requests = ", endpoint_.max_requests, " reached (",
                                endpoint_.max_requests, " requests sent, ", requests_.load(),
                                " answered so far, ", tokens_.load(), " tokens, ", retries_.load(),
                                " retries)"));
    }
    if (endpoint_.max_requests <= 0) sent_.fetch_add(1);
    if (endpoint_.max_tokens > 0 && tokens_.load() >= endpoint_.max_tokens)
      throw BudgetExhausted(cat("teacher.api_max_tokens = ", endpoint_.max_tokens,
                                " reached after ", requests_.load(), " answered requests (",
                                tokens_.load(), " tokens, ", retries_.load(), " retries)"));
    std::unique_ptr<httplib::Client> http = impl_->borrow(endpoint_);
    httplib::Result res =
        body ? http->Post(target.c_str(), payload, "application/json") : http->Get(target.c_str());
    std::string problem;
    double wait = -1;
    if (!res) {
      problem = cat("no answer (", httplib::to_string(res.error()), ")");
      // a broken connection is not given back: the next request opens a fresh one
    } else {
      impl_->give_back(std::move(http));
      const int status = res->status;
      if (status >= 200 && status < 300) {
        nlohmann::json j = answer_json(res->body, what, status);
        requests_.fetch_add(1);
        tokens_.fetch_add(answer_tokens(j));
        return j;
      }
      problem = cat("HTTP ", status, ": ", api_error_message(res->body));
      if (!retryable_status(status)) {
        const char* hint = status == 401 || status == 403
                               ? " (check the API key, teacher.api_key_env)"
                           : status == 404 ? " (check the URL and teacher.api_model)"
                                           : "";
        fail(what, " failed: ", problem, hint);
      }
      wait = parse_retry_after(res->get_header_value("Retry-After"));
    }
    if (attempt >= endpoint_.max_retries)
      fail(what, " failed after ", attempt + 1,
           " attempts (teacher.api_retries = ", endpoint_.max_retries, "): ", problem);
    if (wait < 0) wait = std::min(kMaxBackoff, 0.5 * std::pow(2.0, double(attempt)));
    retries_.fetch_add(1);
    interruptible_sleep(wait, what, endpoint_);
  }
}

// ---- the endpoint's tokenizer --------------------------------------------------------------

nlohmann::json api_model_entry(ApiClient& client) {
  return model_entry_of(client.get("models"), client.endpoint().model,
                        cat(client.endpoint().base_url, "/models"));
}

std::shared_ptr<Tokenizer> fetch_api_tokenizer(ApiClient& client) {
  const ApiEndpoint& e = client.endpoint();
  const nlohmann::json entry = api_model_entry(client);
  refuse_classifier_entry(entry, e.model, e.base_url);
  if (!entry_is_retort(entry)) return nullptr;
  const std::string origin = cat("the endpoint ", e.base_url, " (model ", e.model, ")");
  PublishedTokenizer published =
      published_tokenizer(client.get(cat("models/", e.model, "/tokenizer")), origin, e.model);
  std::shared_ptr<Tokenizer> tok = tokenizer_from_files(published.files, origin);
  if (!published.fingerprint.empty() && published.fingerprint != tok->fingerprint())
    fail(origin, " publishes tokenizer fingerprint ", published.fingerprint,
         " but its files rebuild as ", tok->fingerprint());
  return tok;
}

}  // namespace retort
