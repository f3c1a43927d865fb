// `retort guard verify` on a classifier: DAWN's test of a suspect's answers on the inputs the server
// marked with a keyed wrong class. Not the language-model tests (cmd_guard.cpp, radioactivity.h).
#pragma once
#include "retort/model.h"
#include "retort/radioactivity.h"
#include "retort/watermark_store.h"

namespace retort::cli {

// A classifier: an image model (no tokenizer, not a gpt).
bool is_classifier(const LoadedModel& m);

// DAWN: the suspect's answers on the inputs the server marked, against chance where its class is
// not the served model's top class (dawn.h; the served model is loaded from where the serving
// records say it was served), for each key (the smallest p-value times the number of keys with
// marks); the growth as inputs accumulate. No marked classifier answer in the database, or a
// served model that cannot be opened -> Error.
RadioactivityTest dawn_verification(const WatermarkStore& store, const LoadedModel& m);

}  // namespace retort::cli
