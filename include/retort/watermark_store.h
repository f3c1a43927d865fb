// What the guard database keeps for watermarks (retort/guard.h's database, retort/watermark.h's
// schemes):
//   watermark_keys (id, created, secret)   secrets live only here: never printed, logged or
//                                          answered; rotation adds a key and keeps the old ones
//                                          so that text marked under them is still detected
//   serving        (id, started, model, path, tokenizer, scheme, key_id, gamma, delta, context)
//                                          one row per model each time `retort serve` starts
//                                          marking: what detection needs to score text as it
//                                          was marked (the tokenizer, gamma and h)
//   dawn_marks     (id, time, key_id, api_key_id, model, classes, input, answered)
//                                          each classifier input DAWN marked (retort/dawn.h), its
//                                          pixels (base64) and the wrong class answered
// Audit rows name the scheme and key that marked each answer (audit.watermark, watermark_key).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "retort/guard.h"
#include "retort/watermark.h"

namespace retort {

struct StoredWatermarkKey {
  WatermarkKey key;
  int64_t created = 0;  // unix seconds
};

// A model `retort serve` marked, and how.
struct ServingRecord {
  double started = 0;  // unix seconds
  std::string model, path, tokenizer;  // served id, where from, tokenizer fingerprint
  std::string key_id;
  WatermarkOptions options;
};

// Requests and tokens one API key received marked under one watermark key (from the audit log).
struct MarkedUsage {
  int64_t api_key_id = 0;
  std::string api_key_name;
  int64_t requests = 0, prompt_tokens = 0, completion_tokens = 0;
  double first = 0, last = 0;  // unix seconds of the first and last marked answer
};

// A classifier input DAWN marked and the class answered.
struct DawnMark {
  double time = 0;
  std::string key_id, model;
  int64_t api_key_id = 0, classes = 0, answered = 0;
  std::vector<float> pixels;  // 0..255
};

class WatermarkStore {
 public:
  explicit WatermarkStore(std::shared_ptr<GuardDb> db);
  // A new key from /dev/urandom, "wm-" + 8 hex digits as its public id; it becomes current.
  StoredWatermarkKey rotate();
  // The newest key; nullopt when the database has none.
  std::optional<StoredWatermarkKey> current() const;
  std::vector<StoredWatermarkKey> all() const;  // newest first
  // The current key, or an Error saying how to make one (naming the database).
  StoredWatermarkKey require_current() const;

  void record_serving(const ServingRecord& r);
  std::vector<ServingRecord> serving() const;  // newest first
  // One transaction for a request's marks (before its answer leaves).
  void record_dawn(const std::vector<DawnMark>& marks);
  std::vector<DawnMark> dawn_marks(const std::string& key_id) const;  // oldest first
  // Who received answers marked under `key_id`, most marked tokens first.
  std::vector<MarkedUsage> marked_usage(const std::string& key_id) const;

 private:
  std::shared_ptr<GuardDb> db_;
};

}  // namespace retort
