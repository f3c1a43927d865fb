// The one progress bar: on a terminal a redrawn line with rate and ETA; when
// stderr is not a terminal, a plain line every 10 s and one at the end, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace retort {

class ProgressBar {
 public:
  // `total` units of work (batches, samples); `unit` names them in the rate ("ex/s").
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  ~ProgressBar();
  // Moves to `done` units (absolute); `items` counts toward the throughput;
  // `status` is shown after the bar (e.g. "loss 0.412").
  void update(int64_t done, int64_t items, const std::string& status = "");
  void finish(const std::string& status = "");
  static bool is_terminal();

 private:
  void draw(bool final);
  std::string label_, unit_, status_;
  int64_t total_, done_ = 0, items_ = 0;
  bool finished_ = false, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1:05", "1:02:03"
// Off: bars draw nothing (the ranks of a data-parallel job other than rank 0).
void set_progress_enabled(bool on);

}  // namespace retort
