// The divergence table (see divergence_table.h): one row per divergence, and what reads it.
#include "retort/divergence_table.h"

#include "divergence_rows.h"
#include "retort/error.h"

namespace retort {

namespace {

// A row's factory: the named term of its kind (divergence.h).
template <DivergenceKind kKind>
std::shared_ptr<Term> make_term(double temperature, double weight) {
  return std::make_shared<DivergenceTermOf<kKind>>(temperature, weight);
}

using K = DivergenceKind;

}  // namespace

const std::vector<DivergenceRow>& divergence_table() {
  // name, kind, function, weight_name, default_weight, help, rows, make
  static const std::vector<DivergenceRow> table = {
      {"kl", K::kForwardKl, "forward_kl", nullptr, 0.0, "forward KL, the classic", &forward_kl_rows,
       &make_term<K::kForwardKl>},
      {"rkl", K::kReverseKl, "reverse_kl", nullptr, 0.0, "reverse KL, mode-seeking, MiniLLM",
       &reverse_kl_rows, &make_term<K::kReverseKl>},
      {"jsd", K::kJsd, "generalized_jsd", "beta", 0.5, "generalized JSD, GKD", &jsd_rows,
       &make_term<K::kJsd>},
      {"tvd", K::kTotalVariation, "total_variation", nullptr, 0.0, "total variation",
       &total_variation_rows, &make_term<K::kTotalVariation>},
      {"skl", K::kSkewForwardKl, "skew_forward_kl", "alpha", 0.1, "skew forward KL, DistiLLM",
       &skew_forward_kl_rows, &make_term<K::kSkewForwardKl>},
      {"srkl", K::kSkewReverseKl, "skew_reverse_kl", "alpha", 0.1, "skew reverse KL, DistiLLM",
       &skew_reverse_kl_rows, &make_term<K::kSkewReverseKl>},
  };
  return table;
}

const DivergenceRow& divergence_row(const std::string& name) {
  for (const DivergenceRow& row : divergence_table())
    if (name == row.name) return row;
  fail("unknown divergence '", name, "'; known: ", divergence_names(", "));
}

const DivergenceRow& divergence_row(DivergenceKind kind) {
  for (const DivergenceRow& row : divergence_table())
    if (row.kind == kind) return row;
  fail("unknown divergence kind ", static_cast<int>(kind));
}

std::string divergence_names(const std::string& separator) {
  std::string out;
  for (const DivergenceRow& row : divergence_table())
    out += (out.empty() ? "" : separator) + row.name;
  return out;
}

std::string divergence_loss_help() {
  std::string out = "divergence:";
  for (const DivergenceRow& row : divergence_table()) {
    out += cat(out.back() == ':' ? " " : " | ", row.name, " (", row.help);
    if (row.weight_name) out += cat("; distill.beta is its ", row.weight_name);
    out += ")";
  }
  return out;
}

std::string divergence_weight_help() {
  std::string weights, defaults;
  for (const DivergenceRow& row : divergence_table()) {
    if (!row.weight_name) continue;
    weights += cat(weights.empty() ? "" : ", ", row.name, ": ", row.weight_name);
    defaults += cat(defaults.empty() ? "" : ", ", row.name, " ", row.default_weight);
  }
  return cat(weights, "; -1: the divergence's default (", defaults, ")");
}

double default_weight(DivergenceKind kind) { return divergence_row(kind).default_weight; }

}  // namespace retort
