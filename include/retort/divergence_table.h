// The divergences distill.loss can name: one table, one row each, that the factory
// (make_divergence_term), the config schema (distill.loss's allowed values and help,
// distill.beta's defaults) and `retort distill --help` all read. A new divergence is its
// DivergenceKind and row function (divergence_rows.cpp) plus one row in divergence_table.cpp.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "retort/divergence.h"

namespace retort {

// A divergence per position from log-probabilities: (log p_s (n, V), log p_t (n, V), weight) ->
// (n).
using RowDivergence = torch::Tensor (*)(const torch::Tensor& log_ps, const torch::Tensor& log_pt,
                                        double weight);

struct DivergenceRow {
  const char* name;         // distill.loss value and DivergenceTerm::name(): "jsd"
  DivergenceKind kind;      // the kind its term has
  const char* function;     // its function in divergence.h, named in errors: "generalized_jsd"
  const char* weight_name;  // what distill.beta is for it: "beta", "alpha"; nullptr: none
  double default_weight;    // its weight when distill.beta = -1 (0 when it takes none)
  const char* help;         // one line for `retort config` and `retort distill --help`
  RowDivergence rows;       // what it computes, one position per row
  std::shared_ptr<Term> (*make)(double temperature, double weight);  // its DivergenceTerm
};

// Every row, in the order the help lists them; the first is the classic (forward KL).
const std::vector<DivergenceRow>& divergence_table();
// The row named `name`; unknown -> Error "unknown divergence 'x'; known: kl, rkl, ..." (every row).
const DivergenceRow& divergence_row(const std::string& name);
// The row of `kind` (every kind has one).
const DivergenceRow& divergence_row(DivergenceKind kind);
// The rows' names joined by `separator`: "kl, rkl, jsd, tvd, skl, srkl" with ", ".
std::string divergence_names(const std::string& separator);

// The help lines of the config keys the table feeds: distill.loss (each name with its help) and
// distill.beta (each weight and its default).
std::string divergence_loss_help();
std::string divergence_weight_help();

}  // namespace retort
