// Reports: the report.json contract and a self-contained report.html whose plots
// are drawn by gnuplot (SVG inlined, so the page works offline).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace retort {

struct Series {
  std::string title;                         // legend entry
  std::vector<std::pair<double, double>> xy;  // points
  std::vector<double> err;                   // optional y error bars (same length as xy)
};

struct Plot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  bool logx = false;
};

// Renders with gnuplot's svg terminal; throws retort::Error when gnuplot fails.
std::string plot_svg(const Plot& plot);

// Reads the {"type": TYPE, ...} lines of a metrics.jsonl: (line[x], line[key]) points of the lines
// that hold both as numbers.
std::vector<std::pair<double, double>> metrics_curve(const std::filesystem::path& metrics, const std::string& type,
                                                    const std::string& x, const std::string& key);
// metrics_curve of the epoch lines: (epoch, key) points.
std::vector<std::pair<double, double>> epoch_curve(const std::filesystem::path& metrics, const std::string& key);

// A full HTML page: a title, a summary table (rows of cells, first row is the header),
// the plots, text samples (heading, text) when given, and the report JSON at the end.
std::string render_html(const std::string& title, const std::vector<std::vector<std::string>>& table,
                        const std::vector<Plot>& plots, const nlohmann::json& report, const std::string& notes,
                        const std::vector<std::pair<std::string, std::string>>& samples = {},
                        const std::string& samples_title = "Samples");

// Text table with aligned columns for the terminal.
std::string render_text_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace retort
