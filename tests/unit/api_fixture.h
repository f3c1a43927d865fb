// What the openai: teacher's unit tests share: a fake OpenAI-compatible endpoint (an in-process
// httplib server with scripted answers) and an OpenAI-style error answer.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "retort/api_teacher.h"

namespace retort::api_testing {

using json = nlohmann::json;

// A scripted endpoint on 127.0.0.1: GET /v1/models lists one model "fake"; POST /v1/completions
// is answered by `completion` (default: 200 with an empty choice list) and counted.
class FakeEndpoint {
 public:
  using Handler = std::function<void(const json& body, httplib::Response& res)>;
  FakeEndpoint() {
    server_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json m = {{"id", "fake"}, {"object", "model"}, {"owned_by", "test"}};
      if (!tokenizer_fingerprint.empty())
        m["retort"] = {{"kind", "language_model"}, {"tokenizer", tokenizer_fingerprint}};
      res.set_content(json{{"object", "list"}, {"data", {m}}}.dump(), "application/json");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      ++completions;
      auto body = json::parse(req.body);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        prompts.push_back(body["prompt"]);
        auth = req.get_header_value("Authorization");
      }
      completion(body, res);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeEndpoint() {
    server_.stop();
    thread_.join();
  }
  ApiEndpoint endpoint() const {
    ApiEndpoint e;
    e.base_url = "http://127.0.0.1:" + std::to_string(port_) + "/v1";
    e.model = "fake";
    e.api_key = "sk-test";
    e.concurrency = 1;
    e.max_retries = 3;
    e.timeout = 5;
    return e;
  }
  void reset_counts() {
    completions = 0;
    prompts.clear();
  }

  Handler completion = [](const json&, httplib::Response& res) {
    res.set_content(R"({"choices":[{"text":"ok"}],"usage":{"total_tokens":3}})",
                    "application/json");
  };
  std::string tokenizer_fingerprint;  // set: the model entry carries a retort object naming it
  std::atomic<int> completions{0};
  std::vector<json> prompts;
  std::string auth;

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
};

inline void api_error(httplib::Response& res, int status, const std::string& message,
                      const std::string& retry_after = "") {
  res.status = status;
  if (!retry_after.empty()) res.set_header("Retry-After", retry_after);
  res.set_content(
      json{{"error",
            {{"message", message}, {"type", "test_error"}, {"param", nullptr}, {"code", nullptr}}}}
          .dump(),
      "application/json");
}

}  // namespace retort::api_testing
