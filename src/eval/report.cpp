// report.html: gnuplot SVG plots inlined into one page; and the terminal table.
#include "retort/report.h"

#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "retort/error.h"
#include "retort/fs.h"

namespace retort {

namespace {

std::string html_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += ch;
    }
  }
  return o;
}

std::string gp_quote(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += ch;
  }
  return o + "\"";
}

}  // namespace

std::string plot_svg(const Plot& plot) {
  char tmpl[] = "/tmp/retort-plot-XXXXXX";
  if (!::mkdtemp(tmpl)) fail("cannot make a temporary folder for gnuplot");
  fs::path dir(tmpl);
  std::ostringstream gp;
  gp << "set terminal svg size 640,400 enhanced font 'sans,11' background rgb 'white'\n"
     << "set output " << gp_quote((dir / "plot.svg").string()) << "\n"
     << "set title " << gp_quote(plot.title) << "\nset xlabel " << gp_quote(plot.xlabel) << "\nset ylabel "
     << gp_quote(plot.ylabel) << "\nset grid\nset key bottom right\n";
  gp << "set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.1\n";
  if (plot.logx) {
    // Points may sit at a handful of x values: give the log axis room on both sides.
    double lo = 1e300, hi = 0;
    for (const auto& s : plot.series)
      for (const auto& [x, y] : s.xy) lo = std::min(lo, x), hi = std::max(hi, x);
    gp << "set logscale x\n";
    if (hi > 0) gp << "set xrange [" << lo / 3 << ":" << hi * 3 << "]\n";
  }
  std::string plots;
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    fs::path data = dir / cat("s", i, ".dat");
    std::ostringstream d;
    for (size_t k = 0; k < s.xy.size(); ++k) {
      d << s.xy[k].first << " " << s.xy[k].second;
      if (!s.err.empty()) d << " " << s.err[k];
      d << "\n";
    }
    atomic_write_text(data, d.str());
    if (s.xy.empty()) continue;
    plots += (plots.empty() ? "" : ", ") + gp_quote(data.string()) +
             (s.err.empty() ? " using 1:2 with linespoints pt 7 ps 0.6" : " using 1:2:3 with yerrorbars pt 7 ps 1.2") +
             " title " + gp_quote(s.title);
  }
  if (plots.empty()) plots = "NaN notitle";
  gp << "plot " << plots << "\n";
  atomic_write_text(dir / "plot.gp", gp.str());
  std::string cmd = "gnuplot " + gp_quote((dir / "plot.gp").string()) + " 2>" + gp_quote((dir / "err.txt").string());
  int rc = std::system(cmd.c_str());
  std::string svg;
  if (rc == 0 && fs::exists(dir / "plot.svg")) svg = read_text(dir / "plot.svg");
  std::string err = fs::exists(dir / "err.txt") ? read_text(dir / "err.txt") : "";
  fs::remove_all(dir);
  if (svg.empty()) fail("gnuplot failed (is gnuplot-nox installed? run scripts/setup): ", err.substr(0, 300));
  // Drop the XML prolog so the SVG can sit inline in HTML.
  auto pos = svg.find("<svg");
  return pos == std::string::npos ? svg : svg.substr(pos);
}

std::vector<std::pair<double, double>> metrics_curve(const fs::path& metrics, const std::string& type,
                                                    const std::string& x, const std::string& key) {
  std::vector<std::pair<double, double>> out;
  if (!fs::exists(metrics)) return out;
  std::istringstream in(read_text(metrics));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != type || !j.contains(key) || !j[key].is_number() ||
        !j.contains(x) || !j[x].is_number())
      continue;
    out.emplace_back(j[x].get<double>(), j[key].get<double>());
  }
  return out;
}

std::vector<std::pair<double, double>> epoch_curve(const fs::path& metrics, const std::string& key) {
  return metrics_curve(metrics, "epoch", "epoch", key);
}

std::string render_html(const std::string& title, const std::vector<std::vector<std::string>>& table,
                        const std::vector<Plot>& plots, const nlohmann::json& report, const std::string& notes,
                        const std::vector<std::pair<std::string, std::string>>& samples,
                        const std::string& samples_title) {
  std::ostringstream h;
  h << "<!doctype html>\n<html><head><meta charset='utf-8'><title>" << html_escape(title) << "</title>\n"
    << "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
       "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
       ".plots{display:flex;flex-wrap:wrap;gap:12px}pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}"
       "</style></head><body>\n<h1>"
    << html_escape(title) << "</h1>\n";
  // Notes: one paragraph; a line break in them starts a new line (reports that list findings).
  if (!notes.empty()) {
    std::string p = html_escape(notes);
    for (size_t at = p.find('\n'); at != std::string::npos; at = p.find('\n', at + 5)) p.replace(at, 1, "<br>\n");
    h << "<p>" << p << "</p>\n";
  }
  h << "<table>\n";
  for (size_t r = 0; r < table.size(); ++r) {
    h << "<tr>";
    for (const auto& cell : table[r]) h << (r == 0 ? "<th>" : "<td>") << html_escape(cell) << (r == 0 ? "</th>" : "</td>");
    h << "</tr>\n";
  }
  h << "</table>\n<div class='plots'>\n";
  for (const auto& p : plots) h << "<div>" << plot_svg(p) << "</div>\n";
  h << "</div>\n";
  if (!samples.empty()) {
    h << "<h2>" << html_escape(samples_title) << "</h2>\n";
    for (const auto& [who, text] : samples)
      h << "<h3>" << html_escape(who) << "</h3>\n<pre style='white-space:pre-wrap'>" << html_escape(text) << "</pre>\n";
  }
  h << "<h2>report.json</h2>\n<pre>" << html_escape(report.dump(2)) << "</pre>\n</body></html>\n";
  return h.str();
}

std::string render_text_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::ostringstream os;
  for (size_t k = 0; k < rows.size(); ++k) {
    for (size_t i = 0; i < rows[k].size(); ++i) {
      std::string cell = rows[k][i];
      std::string pad(width[i] - cell.size(), ' ');
      os << (i == 0 ? cell + pad : "  " + pad + cell);
    }
    os << "\n";
    if (k == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      os << std::string(total - 2, '-') << "\n";
    }
  }
  return os.str();
}

}  // namespace retort
