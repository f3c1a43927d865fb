// The divergence table drives everything that names a divergence: every row is a value
// distill.loss accepts (with its help in `retort config`) and a term the factory makes with the
// row's weight and default, and an unknown name is refused, by the config and by the factory,
// with exactly the table's names.
#include "retort/divergence_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "retort/config_schema.h"
#include "retort/options.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;

namespace {

std::vector<std::string> table_names() {
  std::vector<std::string> out;
  for (const DivergenceRow& row : divergence_table()) out.push_back(row.name);
  return out;
}

Config config_with(const std::vector<std::string>& sets) {
  return Config::load(retort_schema(), "", sets);
}

TEST(DivergenceTable, EveryRowIsAcceptedByTheConfigAndMadeByTheFactory) {
  ASSERT_FALSE(divergence_table().empty());
  for (const DivergenceRow& row : divergence_table()) {
    SCOPED_TRACE(row.name);
    Config c = config_with({cat("distill.loss=", row.name)});
    EXPECT_EQ(c.get_string("distill.loss"), row.name);

    std::shared_ptr<Term> term =
        make_divergence_term(row.name, /*temperature=*/2.0, /*beta_or_alpha=*/0.3);
    auto* divergence = dynamic_cast<DivergenceTerm*>(term.get());
    ASSERT_NE(divergence, nullptr);
    EXPECT_EQ(divergence->name(), row.name);
    EXPECT_EQ(divergence->kind(), row.kind);
    EXPECT_EQ(divergence->temperature(), 2.0);
    EXPECT_EQ(divergence->weight(), row.weight_name ? 0.3 : row.default_weight);
    EXPECT_EQ(&divergence_row(row.kind), &row);
    EXPECT_EQ(default_weight(row.kind), row.default_weight);

    // distill.beta = -1 (the default) picks the row's default weight; a value is passed on.
    EXPECT_EQ(read_options(c).distill.weight, row.default_weight);
    EXPECT_EQ(
        read_options(config_with({cat("distill.loss=", row.name), "distill.beta=0.25"})).distill.weight,
        0.25);
    Objective o = make_distill_objective(row.name, /*alpha=*/0.5, /*temperature=*/1.0,
                                         read_options(c).distill.weight);
    EXPECT_NE(o.describe().find(row.name), std::string::npos) << o.describe();
  }
}

TEST(DivergenceTable, ConfigKeysTakeTheirChoicesAndHelpFromTheTable) {
  const ConfigKey* loss = retort_schema().find("distill.loss");
  ASSERT_NE(loss, nullptr);
  EXPECT_EQ(loss->choices, table_names());
  EXPECT_EQ(loss->help, divergence_loss_help());
  const ConfigKey* beta = retort_schema().find("distill.beta");
  ASSERT_NE(beta, nullptr);
  EXPECT_EQ(beta->help, divergence_weight_help());
  for (const DivergenceRow& row : divergence_table()) {
    EXPECT_NE(loss->help.find(cat(row.name, " (", row.help)), std::string::npos) << loss->help;
    if (row.weight_name)
      EXPECT_NE(beta->help.find(cat(row.name, " ", row.default_weight)), std::string::npos)
          << beta->help;
  }
  std::string toml = Config::defaults(retort_schema()).to_toml();
  EXPECT_NE(toml.find("loss = \"kl\"  # " + divergence_loss_help()), std::string::npos) << toml;
}

TEST(DivergenceTable, AnUnknownNameIsRefusedListingExactlyTheTablesNames) {
  std::string names = divergence_names(", ");
  EXPECT_EQ(names, "kl, rkl, jsd, tvd, skl, srkl");  // the table as retort ships it
  EXPECT_EQ(error_of([] { config_with({"distill.loss=js"}); }),
            "config key 'distill.loss' must be one of {" + names + "}, got \"js\"");
  EXPECT_EQ(error_of([] { make_divergence_term("js", 1.0, 0.5); }),
            "unknown divergence 'js'; known: " + names);
  EXPECT_EQ(error_of([] { divergence_row("js"); }), "unknown divergence 'js'; known: " + names);
}

}  // namespace
