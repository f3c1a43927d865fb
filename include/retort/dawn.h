// DAWN (Szyller et al. 2021, "DAWN: Dynamic Adversarial Watermarking of Neural Networks"): the
// mark of a classifier API. For a keyed share of inputs (a keyed hash of the input's pixels
// decides) the answer names a keyed wrong class: its probabilities are those of the model with
// the top class and the chosen one swapped. The marked inputs and their answers are recorded;
// a model trained on the answers repeats some of those wrong classes. The test looks only at the
// marked inputs on which the suspect's class is not the served model's top class: the marked
// answer is a keyed draw among exactly those other classes, so a suspect the key never touched
// names it with probability 1 / (classes - 1) there, however accurate it is (on all inputs an
// accurate model mostly names the top class, never the answer, and the test would be blind).
#pragma once
#include <cstdint>
#include <vector>

#include "retort/watermark.h"

namespace retort {

// The class to answer for `pixels` (n values 0..255, rounded) whose top class is `top`: a keyed
// class other than `top` when the input falls in the marked `share`, else -1.
int64_t dawn_class(const WatermarkKey& key, double share, const std::vector<float>& pixels, int64_t top,
                   int64_t classes);

// Agreement of a suspect's predictions with the marked answers against chance, on the n inputs
// where the suspect's class is not served_top (the served model's top class, which dawn_class
// excluded; an input whose answer equals it is left out too): k of n equal, P(X >= k) for
// X ~ Binomial(n, 1 / (classes - 1)). Detection's score is k, tokens_scored n.
Detection dawn_test(const std::string& key_id, const std::vector<int64_t>& predicted,
                    const std::vector<int64_t>& answered, const std::vector<int64_t>& served_top, int64_t classes);

}  // namespace retort
