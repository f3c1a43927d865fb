// Progress bar implementation (writes to stderr).
#include "retort/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace retort {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

namespace {
bool g_enabled = true;
}
void set_progress_enabled(bool on) { g_enabled = on; }

bool ProgressBar::is_terminal() { return ::isatty(2) == 1; }

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(is_terminal()) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() {
  if (!finished_ && tty_ && done_ > 0 && g_enabled) std::fputc('\n', stderr);
}

void ProgressBar::update(int64_t done, int64_t items, const std::string& status) {
  done_ = done;
  items_ = items;
  status_ = status;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    draw(false);
  } else {
    // Logs: a line at most every 10 s; the final line always comes from finish().
    if (now - last_draw_ >= std::chrono::seconds(10) && done_ < total_) {
      last_draw_ = now;
      draw(false);
    }
  }
}

void ProgressBar::finish(const std::string& status) {
  if (finished_) return;
  if (!status.empty()) status_ = status;
  done_ = total_;
  draw(true);
  finished_ = true;
}

void ProgressBar::draw(bool final) {
  if (!g_enabled) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double frac = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 1.0;
  double rate = elapsed > 0.02 ? items_ / elapsed : 0;  // too early to tell before that
  double eta = frac > 0 ? elapsed * (1 - frac) / frac : NAN;
  char rate_buf[64];
  std::snprintf(rate_buf, sizeof rate_buf, "%.0f %s/s", rate, unit_.c_str());
  std::string timing = final ? "in " + format_duration(elapsed) : "ETA " + format_duration(eta);
  if (tty_) {
    constexpr int kWidth = 24;
    int filled = static_cast<int>(frac * kWidth);
    std::string bar;
    for (int i = 0; i < kWidth; ++i) bar += i < filled ? "\u2588" : "\u2591";
    std::fprintf(stderr, "\r\033[K%s %s %3.0f%% %lld/%lld  %s  %s  %s", label_.c_str(), bar.c_str(),
                 frac * 100, (long long)done_, (long long)total_, rate_buf, timing.c_str(),
                 status_.c_str());
    if (final) std::fputc('\n', stderr);
  } else {
    std::fprintf(stderr, "%s %3.0f%% %lld/%lld  %s  %s  %s\n", label_.c_str(), frac * 100,
                 (long long)done_, (long long)total_, rate_buf, timing.c_str(), status_.c_str());
  }
  std::fflush(stderr);
}

}  // namespace retort
