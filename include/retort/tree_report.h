// The soft decision tree's part of a run's report (model.name = "tree", src/models/tree.h): the
// tree drawn (each inner node's filter as a heat map, each leaf's class distribution), the path
// one test image takes with the probability at each node and the pixels that decided it, and the
// test accuracy of the leaf mixture (what the model outputs) against the single max-path leaf.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace retort {

struct TreeSection {
  nlohmann::json summary;  // for report.json ("tree"): depth, accuracies, the example's path
  std::string html;        // a block of report.html (h2, SVG, tables); empty when not a tree
};

// The section for the run in `run_dir` when its model (run_dir/model) is a tree, else both
// empty. Reads the run's config.toml for the test data (data.path, data.test_subset, mean, std);
// `example` is the index of the test image whose path is shown. When the tree cannot be read
// back (data moved, ...) the html says why instead of failing the report.
TreeSection tree_report_section(const std::filesystem::path& run_dir, int64_t example = 0);

// The name of class `k` of a dataset: Fashion-MNIST's ten ("T-shirt/top" .. "Ankle boot") when
// `fashion`, else "class k".
std::string class_name(int64_t k, bool fashion);

}  // namespace retort
