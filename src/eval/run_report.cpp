// One run's report.json and report.html, read from its folder.
#include "retort/run_report.h"

#include <nlohmann/json.hpp>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/report.h"
#include "retort/tree_report.h"

namespace retort {

namespace {

// The first sentence: what the model reached, and distilled, what it kept of its teacher.
std::string headline(const RunReportInput& in, const nlohmann::json& run, double value) {
  const RunMetric& m = in.metric;
  const int64_t params = run.value("params", int64_t{0});
  std::string s;
  if (in.command != "distill" || std::isnan(in.teacher_value)) {
    s = cat("The ", run.value("model", std::string("model")), " (", thousands(params), " parameters) reached ",
            m.format(value), " ", m.label, " after ", run.value("epochs", 0), " epochs.");
    if (in.command == "distill") s += " The teacher's own score was not measured (it gives no weights to score).";
  } else if (m.higher_is_better) {
    s = cat("The student kept ", decimals(100 * value / in.teacher_value, 1), "% of its teacher's ", m.label, " (",
            m.format(value), " vs ", m.format(in.teacher_value), ")");
  } else {
    const double gap = value - in.teacher_value;
    s = cat("The student scores ", m.format(value), " (", m.label, ", lower is better), ",
            decimals(std::abs(gap) * m.scale, m.digits), gap >= 0 ? " above" : " below", " its teacher's ",
            m.format(in.teacher_value));
  }
  if (in.command == "distill" && !std::isnan(in.teacher_value)) {
    if (in.teacher_params > params && params > 0)
      s += cat(", with ", decimals(double(in.teacher_params) / double(params), 1), "x fewer parameters (",
               thousands(params), " vs ", thousands(in.teacher_params), ")");
    else if (in.teacher_params > 0)
      s += cat(", with ", thousands(params), " parameters (the teacher has ", thousands(in.teacher_params), ")");
    s += ".";
  }
  if (run.contains("agreement"))
    s += cat(" Its top-1 prediction agrees with the teacher's on ", decimals(100 * run["agreement"].get<double>(), 2),
             "% of the held-out data.");
  return s;
}

}  // namespace

std::string RunMetric::format(double value) const { return decimals(value * scale, digits) + unit; }

RunReportFiles write_run_report(const fs::path& dir, const RunReportInput& in) {
  const fs::path run_path = dir / "run.json";
  if (!fs::exists(run_path)) fail("no run.json in ", dir.string(), ": nothing to report");
  nlohmann::json run = nlohmann::json::parse(read_text(run_path), nullptr, false);
  if (run.is_discarded() || run.value("status", "") != "finished" || !run.contains(in.metric.key))
    fail(run_path.string(), " holds no finished run with ", in.metric.key, ": nothing to report");
  const RunMetric& m = in.metric;
  const double value = run[m.key].get<double>();
  RunReportFiles files{dir / "report.json", dir / "report.html", headline(in, run, value)};

  nlohmann::json report = {{"command", in.command},
                           {"dir", dir.string()},
                           {"headline", files.headline},
                           {"metric", {{"key", m.key}, {"label", m.label}, {"value", value},
                                       {"higher_is_better", m.higher_is_better}}}};
  if (in.command == "distill") {
    report["teacher"] = {{"source", run.value("teacher", std::string())}};
    if (!std::isnan(in.teacher_value)) report["teacher"]["value"] = in.teacher_value;
    if (in.teacher_params > 0) report["teacher"]["params"] = in.teacher_params;
  }
  nlohmann::json shown = run;
  shown.erase("digest");
  report["run"] = shown;

  // Table: the model (and its teacher when scored).
  std::vector<std::vector<std::string>> table = {{"", "parameters", m.label, "agreement", "training s"}};
  table.push_back({in.command == "distill" ? "student" : "model", thousands(run.value("params", int64_t{0})),
                   m.format(value),
                   run.contains("agreement") ? decimals(100 * run["agreement"].get<double>(), 2) + "%" : "-",
                   decimals(run.value("train_seconds", 0.0), 1)});
  if (in.command == "distill" && !std::isnan(in.teacher_value))
    table.push_back({"teacher", in.teacher_params > 0 ? thousands(in.teacher_params) : "-", m.format(in.teacher_value),
                     "-", "-"});

  // Plots: the training loss by step; the metric by step (language models record a curve) or
  // by epoch, with the teacher's level; agreement by epoch.
  const fs::path metrics = dir / "metrics.jsonl";
  Plot loss{"Training loss", "step", "loss", {{"loss (objective)", metrics_curve(metrics, "step", "step", "loss"), {}}}};
  Plot score{m.label, "epoch", m.label + (m.unit == "%" ? " (%)" : ""), {}};
  std::vector<std::pair<double, double>> points;
  if (run.contains("curve") && run["curve"].is_array() && !run["curve"].empty()) {
    score.xlabel = "step";
    points = run["curve"].get<std::vector<std::pair<double, double>>>();
  } else {
    points = epoch_curve(metrics, m.key);
  }
  for (auto& p : points) p.second *= m.scale;
  score.series.push_back({in.command == "distill" ? "student" : "model", points, {}});
  if (in.command == "distill" && !std::isnan(in.teacher_value) && !points.empty())
    score.series.push_back({"teacher", {{points.front().first, in.teacher_value * m.scale},
                                        {points.back().first, in.teacher_value * m.scale}}, {}});
  std::vector<Plot> plots = {score, loss};
  auto agreement = epoch_curve(metrics, "agreement");
  if (!agreement.empty()) {
    for (auto& p : agreement) p.second *= 100;
    plots.push_back({"Top-1 agreement with the teacher", "epoch", "agreement (%)", {{"student", agreement, {}}}});
  }

  // A soft decision tree is drawn (tree_report.cpp), before the report.json at the page's end.
  const TreeSection tree = tree_report_section(dir);
  if (!tree.html.empty()) report["tree"] = tree.summary;

  const std::string title = cat("retort ", in.command, ": ", dir.filename().string());
  std::string html = render_html(title, table, plots, report, files.headline);
  if (!tree.html.empty()) html.insert(std::min(html.size(), html.rfind("<h2>report.json</h2>")), tree.html);
  atomic_write_text(files.json, report.dump(2) + "\n");
  atomic_write_text(files.html, html);
  return files;
}

}  // namespace retort
