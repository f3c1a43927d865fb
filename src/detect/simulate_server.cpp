// The simulator's child processes (the server, the teacher's training) and the settings the
// server is started with. Children are this same binary, so its schema says which guard.* keys
// the server understands: a build without the detector simply runs without it, and says so.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "detect/simulate_parts.h"
#include "retort/config_schema.h"
#include "retort/error.h"

extern char** environ;

namespace retort::sim {

// ---- time ------------------------------------------------------------------------------------

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double Clock::elapsed() const { return unix_now() - start_unix; }

bool Clock::sleep_until(double t, const std::atomic<bool>& stop) const {
  for (;;) {
    if (stop.load()) return false;
    const double left = t - elapsed();
    if (left <= 0) return true;
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(left, 0.05)));
  }
}

// ---- child processes -------------------------------------------------------------------------

Child::Child(const std::filesystem::path& binary, const std::vector<std::string>& args,
             const std::filesystem::path& log, bool pipe_stdout) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  int pipe_fds[2] = {-1, -1};
  if (pipe_stdout) {
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail("cannot make a pipe for ", binary.string());
    posix_spawn_file_actions_adddup2(&fa, pipe_fds[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<std::string> all = {binary.string()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = ::posix_spawn(&pid_, binary.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (pipe_stdout) ::close(pipe_fds[1]);
  if (rc != 0) {
    if (pipe_stdout) ::close(pipe_fds[0]);
    fail("cannot start ", binary.string(), ": ", std::strerror(rc));
  }
  out_fd_ = pipe_fds[0];
}

Child::~Child() {
  if (!waited_) terminate(2);
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::string Child::read_line(double seconds) {
  std::string line;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (out_fd_ >= 0 && std::chrono::steady_clock::now() < until) {
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char ch;
    const ssize_t n = ::read(out_fd_, &ch, 1);
    if (n <= 0) break;  // the child closed its stdout (exited)
    if (ch == '\n') return line;
    line += ch;
  }
  return "";
}

int Child::wait() {
  if (!waited_) {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    waited_ = true;
  }
  return status_;
}

int Child::terminate(double grace_seconds) {
  if (waited_) return status_;
  ::kill(pid_, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_seconds);
  while (std::chrono::steady_clock::now() < until) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      waited_ = true;
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid_, SIGKILL);
  return wait();
}

// ---- the server's settings -------------------------------------------------------------------

ServerSettings server_settings(const SimOptions& o, double hour) {
  ServerSettings s;
  const ConfigSchema& schema = retort_schema();
  auto want = [&](const std::string& key, const std::string& value) {
    if (schema.find(key))
      s.sets.push_back(key + "=" + value);
    else
      s.missing.push_back(key);
  };
  want("guard.detect", "true");
  want("guard.trust_forwarded", "true");  // each simulated client's address is its X-Forwarded-For
  want("guard.reference", "kjv");
  char h[32];
  std::snprintf(h, sizeof h, "%g", hour);
  want("guard.hour", h);
  s.detect = schema.find("guard.detect") != nullptr;
  return s;
}

}  // namespace retort::sim
