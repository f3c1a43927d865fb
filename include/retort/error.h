// The one error type retort throws at API boundaries. The CLI turns it into one
// clear line and a non-zero exit; messages carry the offending values.
#pragma once
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>

namespace retort {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown when the user asked the run to stop (Ctrl-C); a checkpoint was saved.
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& what) : Error(what) {}
};

// Thrown when a file retort wrote fails its digest or cannot be parsed any more: it was written
// whole, something damaged it since (a disk, a copy, a kill in the middle of a rename).
class Damaged : public Error {
 public:
  explicit Damaged(const std::string& what) : Error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// cat("batch size is ", n, ", expected ", m) -> std::string
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

// decimals(0.12345, 2) -> "0.12": fixed-point text for tables and messages.
inline std::string decimals(double x, int digits) { return cat(std::fixed, std::setprecision(digits), x); }
// 1234567 -> "1,234,567"
inline std::string thousands(int64_t n) {
  const std::string s = std::to_string(n < 0 ? -n : n);
  std::string out = n < 0 ? "-" : "";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace retort
