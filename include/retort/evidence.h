// What `retort guard` concludes from the guard database: the watermarks it holds as detection
// needs them, and the evidence a verification of a suspect model leaves (evidence.json and
// evidence.html: the p-value, the tokens scored, the method, the key, a control on a reference
// model, and the API keys whose audit rows show they received marked answers).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "retort/radioactivity.h"
#include "retort/tokenizer.h"
#include "retort/watermark_store.h"

namespace retort {

// Every key with the options it was served under, and the marked model's tokenizer.
struct DatabaseMarks {
  std::vector<Watermark> marks;  // one per (key, options) the serving records name
  std::string model_path;        // the newest marked model: its tokenizer scores text; the default control
  std::shared_ptr<Tokenizer> tokenizer;
};

// From the serving records; `model` (a model folder) overrides whose tokenizer is used, and
// keeps only the records of models with that tokenizer. No record -> Error saying how to make one.
DatabaseMarks database_marks(const WatermarkStore& store, const std::string& db_name, const std::string& model = "");

struct Evidence {
  std::string suspect, reference;  // as named on the command line
  std::vector<std::string> baselines;  // their mean green mass is subtracted in both tests (paired)
  RadioactivityTest test, control;  // the suspect's and the reference model's
  double alpha = 1e-6;              // below this p-value the suspect counts as marked
  std::vector<MarkedUsage> usage;   // API keys that received answers marked under the key found
};

struct EvidenceFiles {
  std::filesystem::path json, html;
  std::string headline;
};

// Writes evidence.json and evidence.html into `dir` (made if missing), each atomically.
EvidenceFiles write_evidence(const std::filesystem::path& dir, const Evidence& e);

}  // namespace retort
