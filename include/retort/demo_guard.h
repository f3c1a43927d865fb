// `retort demo guard`: the provider side end to end. Three `retort serve` providers on loopback,
// each with its own guard database, detector, watermark key and TAXII collections; each pulls
// the other two (intel.pull). The simulator's benign people use all three; a hydra campaign
// (many keys from a few addresses, one top-k harvest) starts at provider A, and when A has
// stopped it, regroups and moves to B, then C. The run shows A detecting and publishing, B and
// C refusing the actor on first contact from A's indicators, a student distilled from what the
// hydra got at A before it was stopped, and `retort guard verify` on that student; all in
// OUT/report.json and OUT/report.html, measured from the three databases.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>

#include "retort/simulate.h"

namespace retort {

struct GuardDemoOptions {
  SimOptions sim;           // the teacher, the benign mix (per provider), the hydra, the clock
  int64_t providers = 3;    // A, B, C, ...
  double regroup = 12;      // seconds the hydra waits after one provider stopped it before the next (sim.duration / 8)
  double max_duration = 300;  // the traffic ends by then whatever the hydra does
  bool student = true;      // distil a student from what the hydra got at A and verify it
};

// The options of `retort demo guard` from its config (sim.* keys; defaults in guard_demo_toml()).
GuardDemoOptions read_guard_demo_options(const Config& c);
// The demo's recipe over the simulator's defaults: a lighter benign crowd per provider, only the hydra.
const char* guard_demo_toml();

// The whole demo into `out`; returns report.json's content.
nlohmann::json run_guard_demo(const GuardDemoOptions& o, const std::filesystem::path& out,
                              const std::filesystem::path& retort_binary);

}  // namespace retort
