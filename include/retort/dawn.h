// DAWN (Szyller et al. 2021, "DAWN: Dynamic Adversarial Watermarking of Neural Networks"): the
// mark of a classifier API. For a keyed share of inputs (a keyed hash of the input's pixels
// decides) the answer names a keyed wrong class: its probabilities are those of the model with
// the top class and the chosen one swapped. The marked inputs and their answers are recorded;
// a model trained on the answers repeats some of those wrong classes, one that was not agrees
// with them only by chance (at most 1 / (classes - 1) each), a binomial test.
#pragma once
#include <cstdint>
#include <vector>

#include "retort/watermark.h"

namespace retort {

// The class to answer for `pixels` (n values 0..255, rounded) whose top class is `top`: a keyed
// class other than `top` when the input falls in the marked `share`, else -1.
int64_t dawn_class(const WatermarkKey& key, double share, const std::vector<float>& pixels, int64_t top,
                   int64_t classes);

// Agreement of a suspect's predictions with the marked answers against chance: k of n equal,
// P(X >= k) for X ~ Binomial(n, 1 / (classes - 1)). Detection's score is k, tokens_scored n.
Detection dawn_test(const std::string& key_id, const std::vector<int64_t>& predicted,
                    const std::vector<int64_t>& answered, int64_t classes);

}  // namespace retort
