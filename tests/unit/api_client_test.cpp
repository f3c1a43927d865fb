// The openai: teacher's HTTP client against a fake OpenAI-compatible endpoint (api_fixture.h):
// retries and Retry-After, errors, the request and token budgets, the endpoint from the config.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "api_fixture.h"
#include "retort/api_teacher.h"
#include "retort/config_schema.h"
#include "retort/error.h"
#include "retort/options.h"
#include "retort/teacher_source.h"
#include "test_util.h"

using namespace retort;
using retort::api_testing::api_error;
using retort::api_testing::FakeEndpoint;
using retort::testing::error_of;
using json = nlohmann::json;

namespace {

// Fails the first `failures` requests with `status` (Retry-After `retry_after`), then answers.
FakeEndpoint::Handler failing_then_ok(int failures, int status, const std::string& retry_after) {
  auto seen = std::make_shared<std::atomic<int>>(0);
  return [=](const json&, httplib::Response& res) {
    if (seen->fetch_add(1) < failures) return api_error(res, status, "try later", retry_after);
    res.set_content(R"({"choices":[{"text":"ok"}],"usage":{"total_tokens":3}})",
                    "application/json");
  };
}

double seconds_of(const std::function<void()>& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// ---- the client ----------------------------------------------------------------------------

TEST(ApiClient, RetriesA429AfterTheRetryAfterItWasGiven) {
  FakeEndpoint fake;
  fake.completion = failing_then_ok(1, 429, "0.3");
  ApiClient client(fake.endpoint());
  json answer;
  double s = seconds_of([&] {
    answer = client.post("completions", {{"model", "fake"}, {"prompt", "x"}});
  });
  EXPECT_GE(s, 0.3);
  EXPECT_LT(s, 3.0);
  EXPECT_EQ(answer["choices"][0]["text"], "ok");
  EXPECT_EQ(fake.completions.load(), 2);
  EXPECT_EQ(client.retries(), 1);
  EXPECT_EQ(client.requests(), 1);
  EXPECT_EQ(client.tokens(), 3);
  EXPECT_EQ(fake.auth, "Bearer sk-test");
}

TEST(ApiClient, Retries503ThenSucceeds) {
  FakeEndpoint fake;
  fake.completion = failing_then_ok(2, 503, "0.05");
  ApiClient client(fake.endpoint());
  EXPECT_EQ(client.post("completions", {{"prompt", "x"}})["choices"][0]["text"], "ok");
  EXPECT_EQ(fake.completions.load(), 3);
  EXPECT_EQ(client.retries(), 2);
}

TEST(ApiClient, BadRequestIsAnErrorWithTheServersMessageAndNoRetry) {
  FakeEndpoint fake;
  fake.completion = [](const json&, httplib::Response& res) {
    api_error(res, 400, "max_tokens must be >= 1");
  };
  ApiClient client(fake.endpoint());
  std::string e = error_of([&] { client.post("completions", {{"prompt", "x"}}); });
  EXPECT_NE(e.find("400"), std::string::npos) << e;
  EXPECT_NE(e.find("max_tokens must be >= 1"), std::string::npos) << e;
  EXPECT_EQ(fake.completions.load(), 1);
  EXPECT_EQ(client.retries(), 0);
}

TEST(ApiClient, UnauthorizedIsAnErrorNamingTheKey) {
  FakeEndpoint fake;
  fake.completion = [](const json&, httplib::Response& res) {
    api_error(res, 401, "invalid API key");
  };
  ApiClient client(fake.endpoint());
  std::string e = error_of([&] { client.post("completions", {{"prompt", "x"}}); });
  EXPECT_NE(e.find("401"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid API key"), std::string::npos) << e;
  EXPECT_NE(e.find("api_key_env"), std::string::npos) << e;
  EXPECT_EQ(fake.completions.load(), 1);
}

TEST(ApiClient, RequestBudgetStopsTheFourthRequest) {
  FakeEndpoint fake;
  ApiEndpoint e = fake.endpoint();
  e.max_requests = 3;
  ApiClient client(e);
  for (int i = 0; i < 3; ++i) client.post("completions", {{"prompt", "x"}});
  try {
    client.post("completions", {{"prompt", "x"}});
    FAIL() << "no BudgetExhausted";
  } catch (const BudgetExhausted& b) {
    EXPECT_NE(std::string(b.what()).find("teacher.api_max_requests = 3"), std::string::npos)
        << b.what();
  }
  EXPECT_EQ(fake.completions.load(), 3);
}

TEST(ApiClient, TokenBudgetStopsOnceSpent) {
  FakeEndpoint fake;  // 3 tokens per answer
  ApiEndpoint e = fake.endpoint();
  e.max_tokens = 5;
  ApiClient client(e);
  client.post("completions", {{"prompt", "x"}});
  client.post("completions", {{"prompt", "x"}});  // 3 < 5: sent
  EXPECT_THROW(client.post("completions", {{"prompt", "x"}}), BudgetExhausted);
  EXPECT_EQ(fake.completions.load(), 2);
}

TEST(ApiClient, ConnectionRefusedIsAnErrorAfterTheRetries) {
  ApiEndpoint e;
  e.base_url = "http://127.0.0.1:1/v1";  // port 1: nothing listens there
  e.model = "fake";
  e.max_retries = 1;
  e.timeout = 2;
  ApiClient client(e);
  std::string msg = error_of([&] { client.get("models"); });
  EXPECT_NE(msg.find("after 2 attempts"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no answer"), std::string::npos) << msg;
  EXPECT_EQ(client.retries(), 1);
}

TEST(ApiClient, EndpointFromConfigNeedsAUrlAModelAndAKey) {
  Config c = Config::defaults(retort_schema());
  c.set("teacher.path", "openai:http://127.0.0.1:9/v1/");
  auto api_endpoint_from = [](const Config& c) {
    const Options o = read_options(c);
    return *open_teacher(o.teacher.path, o.teacher.source).api;
  };
  EXPECT_NE(error_of([&] { api_endpoint_from(c); }).find("teacher.api_model"), std::string::npos);
  c.set("teacher.api_model", "kjv");
  c.set("teacher.api_key_env", "RETORT_TEST_UNSET_KEY_VARIABLE");
  ::unsetenv("RETORT_TEST_UNSET_KEY_VARIABLE");
  EXPECT_NE(error_of([&] { api_endpoint_from(c); }).find("RETORT_TEST_UNSET_KEY_VARIABLE"),
            std::string::npos);
  ::setenv("RETORT_TEST_UNSET_KEY_VARIABLE", "sk-1", 1);
  ApiEndpoint e = api_endpoint_from(c);
  EXPECT_EQ(e.base_url, "http://127.0.0.1:9/v1");
  EXPECT_EQ(e.api_key, "sk-1");
  EXPECT_EQ(e.concurrency, 4);
  c.set("teacher.path", "openai:127.0.0.1:9/v1");
  EXPECT_NE(error_of([&] { api_endpoint_from(c); }).find("http://"), std::string::npos);
  ::unsetenv("RETORT_TEST_UNSET_KEY_VARIABLE");
  EXPECT_STREQ(teacher_source_of("openai:http://x/v1").name, "openai");
  EXPECT_STREQ(teacher_source_of("runs/demo/teacher").name, "folder");
}
