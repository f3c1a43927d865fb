// The guard demo's parts (private to src/detect/demo_guard*.cpp): the providers as run, and what
// the report is made from.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "detect/simulate_parts.h"
#include "retort/demo_guard.h"

namespace retort::sim {

struct Provider {
  Provider();
  ~Provider();
  Provider(Provider&&) = default;
  Provider& operator=(Provider&&) = default;
  std::string name;  // "A", "B", ...
  std::filesystem::path dir, db;
  std::vector<SimKey> benign;
  std::unique_ptr<Campaign> hydra;                   // the hydra's accounts here
  std::map<std::string, std::string> partner_keys;   // partner name -> the key it pulls with
  std::unique_ptr<Child> server;
  std::string port;
  Traffic traffic;
};

struct GuardDemoFacts {
  GuardDemoOptions options;
  std::filesystem::path out, model, binary;
  std::vector<Provider> providers;
  std::map<std::string, std::vector<std::string>> sets;        // every --set each server ran with
  Clock clock;
  double traffic_seconds = 0, wall_seconds = 0;
  int64_t windows_at_a = 0;  // the hydra's answered windows at A
  nlohmann::json student;    // {"run", "val_bpb", "windows", "teacher_val_bpb"} or {"failed": why}
  nlohmann::json evidence;   // evidence.json of `retort guard verify`, or {"failed": why}
};

// Runs `retort ARGS` (binary) to its end, output to `log`; Error with the log's tail when it fails.
void run_child(const std::filesystem::path& binary, const std::vector<std::string>& args,
               const std::filesystem::path& log, const std::string& what);
// 64 hex digits from /dev/urandom: the sharing group's key for account pseudonyms.
std::string random_group_secret();
// A student distilled through A's API (a key the operator allowed) over the first windows_at_a windows.
void distil_student(GuardDemoFacts& f);
// `retort guard verify` of that student against A's database (A's watermark key).
void verify_student(GuardDemoFacts& f);
// report.json + report.html in f.out; returns report.json's content.
nlohmann::json write_guard_demo_report(const GuardDemoFacts& f);

}  // namespace retort::sim
