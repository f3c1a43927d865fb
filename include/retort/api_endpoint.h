// Where an OpenAI-compatible teacher is and what it may spend: the endpoint an `openai:`
// teacher source names (retort/teacher_source.h) and the client (retort/api_teacher.h) talks to.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace retort {

struct ApiEndpoint {
  std::string base_url;     // "http://127.0.0.1:8080/v1" (https works too)
  std::string model;        // the endpoint's model id (teacher.api_model, --teacher-model)
  std::string api_key;      // read from the environment variable teacher.api_key_env
  int64_t concurrency = 4;  // requests in flight
  int64_t max_retries = 6;  // per request, on connection errors, 429, 5xx
  double timeout = 120;     // seconds per request
  int64_t max_requests = 0; // budget: requests sent over the harvest; 0 = no limit
  int64_t max_tokens = 0;   // budget: usage.total_tokens over the harvest; 0 = no limit (checked
                            // before each request: requests in flight may overshoot it a little).
                            // A classifier's token is one image (retort serve's /classify usage)
  int64_t batch = 64;       // images per /classify request (classifiers; retort serve takes 256)
  // Sent with every request besides Authorization, e.g. {"User-Agent", "OpenAI/Python 1.40.0"},
  // {"X-Forwarded-For", "10.0.0.7"} (retort guard simulate gives each simulated client its own).
  std::vector<std::pair<std::string, std::string>> headers;
  double min_interval = 0;  // seconds between the starts of two sends (pacing); 0 = no pacing
  // When set and true, the next send (or retry wait) throws Interrupted instead: a caller's way to
  // stop a harvest that runs in its own thread (Ctrl-C stops it too).
  std::shared_ptr<const std::atomic<bool>> stop;
};

// The prefix of openai: teacher sources ("openai:URL"); part of the top-k cache keys too.
inline constexpr char kApiTeacherPrefix[] = "openai:";

}  // namespace retort
