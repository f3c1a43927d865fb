// Radioactivity (Sander et al. 2024, "Watermarking makes language models radioactive"): was a
// suspect model trained on text a watermark marked? A model that learned from marked text
// prefers the green tokens of the contexts it saw, so its own predictions carry the mark.
//   open model   the suspect is teacher-forced on texts the provider chooses (unmarked ones: a
//                marked text would make any good predictor look marked); its top prediction at
//                each position is scored against the key's green list for the true h tokens
//                before it, each (context, prediction) pair once. Its `top` most likely tokens
//                may all be scored: under the null their green-ness is still independent
//                Bernoulli(gamma) (distinct pairs are distinct inputs of the keyed hash), and a
//                student that learned the mark ranks green tokens higher below its first choice too.
//   black box    the suspect writes continuations of prompts; the continuations are scored as
//                text, dropping (context, token) pairs that occur in the prompts.
// Several keys: the smallest p-value, multiplied by their number.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "retort/model.h"
#include "retort/watermark.h"

namespace retort {

struct RadioactivityTest {
  std::string method;      // "open-model" | "black-box"
  Detection detection;     // the best key's, its p-value corrected for the number of keys
  int64_t predictions = 0;  // positions scored before deduplication and filtering
  // (pairs scored, -log10 p) of the best key as its pairs accumulate: how the evidence grows
  std::vector<std::pair<double, double>> growth;
};

// tokens: (N) int ids of the texts; windows of seq_len, batch windows at a time, at most
// max_positions positions (0: all), the `top` most likely tokens at each scored. top = 0 scores
// the suspect's probability mass on the green list instead: per distinct context c, its
// predicted distributions averaged over c's occurrences, p_c, give X_c = sum_t p_c(t) green(c, t),
// with mean gamma and variance gamma (1 - gamma) sum_t p_c(t)^2 under the null, independently
// across contexts; the p-value is the normal tail of their sum (an approximation, unlike the exact
// binomial of top >= 1), which sees a shift of the suspect's probabilities too small to change its
// top tokens.
// baselines (top = 0 only): models trained without the provider's answers, teacher-forced on the
// same windows; with b_c their mean distribution, d_c = p_c - b_c replaces p_c (mean 0, variance
// gamma (1 - gamma) sum_t d_c(t)^2 under the null). The null holds for any baselines the key did
// not touch, however unlike the suspect they are; the closer they are (the same kind of model,
// trained on the same public text; several, so that their own seeds' noise averages out), the less
// of the suspect's own preferences is left to hide a learned shift.
RadioactivityTest radioactivity_open_model(ModelImpl& suspect, const torch::Tensor& tokens,
                                           const std::vector<Watermark>& marks, int64_t seq_len,
                                           int64_t batch, int64_t max_positions = 0, int64_t top = 1,
                                           const std::vector<ModelImpl*>& baselines = {});

// prompts[i] and the suspect's continuation outputs[i], as ids of the provider's tokenizer.
RadioactivityTest radioactivity_black_box(const std::vector<std::vector<int64_t>>& prompts,
                                          const std::vector<std::vector<int64_t>>& outputs,
                                          const std::vector<Watermark>& marks);

}  // namespace retort
