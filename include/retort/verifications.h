// Durable rows of `retort guard verify` (retort/evidence.h): one per verification of a suspect
// model against this provider's watermark, kept in the guard database so that the dashboard can
// list them and the intel publisher can share them as STIX notes. No torch, no HTTP.
//
//   verifications (id, time, suspect, method, p_value, tokens, watermark_key, control_p_value,
//                  headline, evidence_path, usage)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "retort/guard.h"

namespace retort {

struct VerificationRow {
  int64_t id = 0;               // set by VerificationStore::append
  double time = 0;              // unix seconds
  std::string suspect;          // the suspect model as named on the command line
  std::string method;           // how it was tested (the evidence's method, e.g. "kgw z-test")
  double p_value = 1;           // of the suspect's text under "no watermark"
  int64_t tokens = 0;           // tokens scored
  std::string watermark_key;    // the watermark key's public id
  double control_p_value = -1;  // the reference/control model's p-value (-1: none)
  std::string headline;         // the evidence's one-line verdict
  std::string evidence_path;    // where evidence.json / .html were written
  std::string usage;            // JSON: the API keys that received marked answers:
                                //   [{"key", "requests", "prompt_tokens", "completion_tokens", "first", "last"}]
};

class VerificationStore {
 public:
  explicit VerificationStore(std::shared_ptr<GuardDb> db);  // makes the table on first use
  VerificationRow append(VerificationRow row);              // committed (durable) on return, with its id
  std::vector<VerificationRow> recent(int64_t limit) const; // newest first

 private:
  std::shared_ptr<GuardDb> db_;
};

}  // namespace retort
