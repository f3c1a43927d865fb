// The soft decision tree's section of report.html (retort/tree_report.h): its numbers on the
// run's test data first, then the drawing (inline SVG; filters and images are PNG data URIs).
#include "retort/tree_report.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "models/tree.h"
#include "png.h"
#include "retort/config.h"
#include "retort/config_schema.h"
#include "retort/data.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/model.h"

namespace retort {

namespace {

constexpr int64_t kShownLevels = 6;  // inner levels drawn; what lies deeper is folded into one box
constexpr int kRow = 34;             // px per box row at the right of the drawing
constexpr int kColumn = 110;         // px per level
constexpr int kFilter = 56;          // px of a filter picture (28x28 shown at 2x)
constexpr const char* kPath = "#e8590c";
const char* const kClassColour[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

const int kRed[3] = {215, 48, 39}, kBlue[3] = {33, 102, 172};

std::string class_colour(int64_t k) { return kClassColour[k % 10]; }

// ---- pictures --------------------------------------------------------------------------

// A (C, H, W) tensor summed over C as a heat map: red > 0, blue < 0, white 0, scaled by the
// largest |value|.
std::string tree_heat_map(const torch::Tensor& v) {
  torch::Tensor m = v.detach().to(torch::kCPU, torch::kFloat64).sum(0).contiguous();
  const double top = std::max(m.abs().max().item<double>(), 1e-12);
  const int64_t h = m.size(0), w = m.size(1);
  std::vector<uint8_t> rgb;
  const double* d = m.data_ptr<double>();
  for (int64_t i = 0; i < h * w; ++i) {
    const double t = std::clamp(d[i] / top, -1.0, 1.0);
    const int* to = t > 0 ? kRed : kBlue;  // white at 0, `to` at |t| = 1
    for (int ch = 0; ch < 3; ++ch)
      rgb.push_back(static_cast<uint8_t>(std::lround(255 + std::abs(t) * (to[ch] - 255))));
  }
  return png_data_uri(w, h, rgb);
}

// A (C, H, W) image averaged over C in grey, its smallest value black and largest white.
std::string tree_grey_image(const torch::Tensor& v) {
  torch::Tensor m = v.detach().to(torch::kCPU, torch::kFloat64).mean(0).contiguous();
  const double lo = m.min().item<double>(), span = std::max(m.max().item<double>() - lo, 1e-12);
  std::vector<uint8_t> rgb;
  const double* d = m.data_ptr<double>();
  for (int64_t i = 0; i < m.numel(); ++i) {
    const auto g = static_cast<uint8_t>(std::lround(255 * (d[i] - lo) / span));
    rgb.insert(rgb.end(), {g, g, g});
  }
  return png_data_uri(m.size(1), m.size(0), rgb);
}

std::string img_tag(const std::string& uri, int px, const std::string& title) {
  return cat("<img src='", uri, "' width='", px, "' height='", px, "' title='", title,
             "' style='image-rendering:pixelated;border:1px solid #bbb'>");
}

// Ten bars (one per class) for a distribution q (C), `width` px wide, `height` px tall, at (x, y).
std::string svg_bars(const torch::Tensor& q, int x, int y, int height, bool fashion) {
  std::ostringstream s;
  const int64_t C = q.size(0);
  const int bar = std::max<int>(4, static_cast<int>(120 / C) - 2);
  for (int64_t c = 0; c < C; ++c) {
    const double p = q[c].item<double>();
    const int h = std::max<int>(1, static_cast<int>(std::lround(p * height)));
    s << "<rect x='" << x + c * (bar + 2) << "' y='" << y + height - h << "' width='" << bar << "' height='" << h
      << "' fill='" << class_colour(c) << "'><title>" << class_name(c, fashion) << " " << decimals(p, 3)
      << "</title></rect>";
  }
  const int64_t best = q.argmax().item<int64_t>();
  s << "<text x='" << x + C * (bar + 2) + 4 << "' y='" << y + height - 6 << "' font-size='12'>"
    << class_name(best, fashion) << " " << decimals(100 * q[best].item<double>(), 0) << "%</text>";
  return s.str();
}

// ---- what one test image does ------------------------------------------------------------

struct PathStep {
  int64_t node = 0;
  double z = 0, p_right = 0, path_probability = 0;  // z = beta (w.x + b); probability of the path so far
  bool right = false;
};

// The path to the example's most probable leaf, node by node.
// z: (2^depth - 1) beta (w . x + b) of every node for the example.
std::vector<PathStep> example_path(TreeImpl& tree, const TreeRouting& r, const torch::Tensor& z, int64_t leaf) {
  const int64_t depth = tree.options().depth();
  std::vector<PathStep> path;
  double prob = 1;
  for (int64_t k = 0; k < depth; ++k) {
    PathStep s;
    s.node = ((int64_t{1} << k) - 1) + (leaf >> (depth - k));
    s.right = (leaf >> (depth - k - 1)) & 1;
    s.p_right = r.right[0][s.node].item<double>();
    s.z = z[s.node].item<double>();
    prob *= s.right ? s.p_right : 1 - s.p_right;
    s.path_probability = prob;
    path.push_back(s);
  }
  return path;
}

// ---- the drawing ---------------------------------------------------------------------------

// The top kShownLevels levels of inner nodes, left to right from the root, each as its filter;
// at the right, each leaf's distribution (or, below the shown levels, the test-mass-weighted
// distribution of the subtree's leaves). The example's path in orange.
std::string tree_svg(TreeImpl& tree, const torch::Tensor& Q, const torch::Tensor& mass,
                     const std::vector<PathStep>& path, int64_t C, int64_t H, int64_t W, bool fashion) {
  const int64_t depth = tree.options().depth(), shown = std::min(depth, kShownLevels);
  const int64_t boxes = int64_t{1} << shown, per_box = int64_t{1} << (depth - shown);
  const int height = static_cast<int>(boxes * kRow + 20), width = static_cast<int>(shown * kColumn + 420);
  auto y_of = [&](int64_t k, int64_t pos) { return 10 + (pos + 0.5) * static_cast<double>(boxes >> k) * kRow; };
  auto on_path = [&](int64_t k, int64_t pos) {
    return k <= static_cast<int64_t>(path.size()) &&
           (k == 0 || path[k - 1].node * 2 + (path[k - 1].right ? 2 : 1) == ((int64_t{1} << k) - 1) + pos);
  };
  torch::Tensor w = tree.inner->weight.detach();
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
    << "' font-family='sans-serif'>\n";
  for (int64_t k = 0; k < shown; ++k) {
    for (int64_t pos = 0; pos < (int64_t{1} << k); ++pos) {
      const int64_t node = ((int64_t{1} << k) - 1) + pos;
      const int x = static_cast<int>(10 + k * kColumn);
      const double y = y_of(k, pos);
      for (int child = 0; child < 2; ++child) {  // upper edge: left (1 - p); lower: right (p)
        const int64_t cpos = pos * 2 + child;
        const bool hot = on_path(k + 1, cpos) && on_path(k, pos);
        s << "<line x1='" << x + kFilter << "' y1='" << y << "' x2='" << x + kColumn << "' y2='" << y_of(k + 1, cpos)
          << "' stroke='" << (hot ? kPath : "#bbb") << "' stroke-width='" << (hot ? 3 : 1) << "'/>";
      }
      s << "<image x='" << x << "' y='" << y - kFilter / 2.0 << "' width='" << kFilter << "' height='" << kFilter
        << "' style='image-rendering:pixelated' href='" << tree_heat_map(w[node].view({C, H, W})) << "'><title>node "
        << node << " (level " << k << ")</title></image>";
      if (on_path(k, pos))
        s << "<rect x='" << x - 1 << "' y='" << y - kFilter / 2.0 - 1 << "' width='" << kFilter + 2 << "' height='"
          << kFilter + 2 << "' fill='none' stroke='" << kPath << "' stroke-width='2'/>"
          << "<text x='" << x + kFilter + 3 << "' y='" << y - 4 << "' font-size='11' fill='" << kPath << "'>p(right) "
          << decimals(path[k].p_right, 2) << "</text>";
    }
  }
  for (int64_t b = 0; b < boxes; ++b) {
    // The leaves under box b and their distribution, weighted by how much test mass reaches each.
    torch::Tensor m = mass.narrow(0, b * per_box, per_box), q = Q.narrow(0, b * per_box, per_box);
    torch::Tensor weights = m.sum().item<double>() > 0 ? m / m.sum() : torch::full_like(m, 1.0 / per_box);
    torch::Tensor dist = (weights.unsqueeze(1) * q).sum(0);
    const int x = static_cast<int>(10 + shown * kColumn);
    const int y = static_cast<int>(y_of(shown, b) - (kRow - 8) / 2.0);
    if (on_path(shown, b))
      s << "<rect x='" << x - 3 << "' y='" << y - 3 << "' width='124' height='" << kRow - 2 << "' fill='none' stroke='"
        << kPath << "' stroke-width='2'/>";
    s << svg_bars(dist, x, y, kRow - 8, fashion);
    s << "<text x='" << x + 232 << "' y='" << y + kRow - 14 << "' font-size='10' fill='#666'>"
      << (per_box == 1 ? cat("leaf ", b) : cat(per_box, " leaves")) << ", " << decimals(100 * m.sum().item<double>(), 1)
      << "% of test</text>\n";
  }
  s << "</svg>";
  return s.str();
}

// ---- the section -----------------------------------------------------------------------

TreeSection section_of(const fs::path& run_dir, int64_t example) {
  LoadedModel m = load_model_folder(run_dir / "model");
  auto* tree = dynamic_cast<TreeImpl*>(m.model.get());
  if (!tree) fail("the model in ", (run_dir / "model").string(), " is not a tree");
  Config c = Config::load(retort_schema(), (run_dir / "config.toml").string(), {});
  ImageSetOptions io;
  io.dir = c.get_string("data.path");
  io.split = "test";
  io.subset = c.get_int("data.test_subset");
  io.mean = c.get_float("data.mean");
  io.std = c.get_float("data.std");
  ImageSet test = load_image_set(io);
  if (example < 0 || example >= test.size())
    fail("tree report: example ", example, " is outside the ", test.size(), " test images");
  std::string lower = io.dir;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  const bool fashion = lower.find("fashion") != std::string::npos && test.num_classes <= 10;
  const int64_t C = test.images.size(1), H = test.images.size(2), W = test.images.size(3);

  torch::NoGradGuard no_grad;
  tree->eval();
  tree->to(torch::kCPU);
  const TreeOptions& o = tree->options();
  TreeRouting all = tree->route(test.images);
  torch::Tensor Q = tree->leaf_distributions().detach();                         // (L, classes)
  torch::Tensor mixture = all.leaf.matmul(Q).argmax(1);                          // what forward predicts
  torch::Tensor max_path = Q.argmax(1).index_select(0, all.leaf.argmax(1));     // the paper's rule
  const double mixture_acc = mixture.eq(test.labels).to(torch::kFloat64).mean().item<double>();
  const double max_path_acc = max_path.eq(test.labels).to(torch::kFloat64).mean().item<double>();
  torch::Tensor mass = all.leaf.to(torch::kFloat64).mean(0);                     // (L) test mass per leaf

  torch::Tensor x = test.images[example];
  TreeRouting r = tree->route(x.unsqueeze(0));
  const int64_t leaf = r.leaf[0].argmax().item<int64_t>(), label = test.labels[example].item<int64_t>();
  std::vector<PathStep> path =
      example_path(*tree, r, tree->inner->forward(x.unsqueeze(0).flatten(1))[0] * o.beta(), leaf);
  torch::Tensor mix = r.leaf[0].matmul(Q);
  const int64_t mix_class = mix.argmax().item<int64_t>(), leaf_class = Q[leaf].argmax().item<int64_t>();

  TreeSection out;
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : path)
    steps.push_back({{"node", s.node}, {"z", s.z}, {"p_right", s.p_right}, {"turn", s.right ? "right" : "left"},
                     {"path_probability", s.path_probability}});
  out.summary = {{"depth", o.depth()}, {"leaves", Q.size(0)}, {"beta", o.beta()}, {"split_penalty", o.split_penalty()},
                 {"test_examples", test.size()}, {"mixture_accuracy", mixture_acc}, {"max_path_accuracy", max_path_acc},
                 {"example", {{"index", example}, {"label", label}, {"label_name", class_name(label, fashion)},
                              {"leaf", leaf}, {"leaf_probability", r.leaf[0][leaf].item<double>()},
                              {"mixture_prediction", mix_class}, {"max_path_prediction", leaf_class}, {"path", steps}}}};

  std::ostringstream h;
  h << "<h2>The tree</h2>\n<p>A soft decision tree of depth " << o.depth() << " (" << Q.size(0) << " leaves, "
    << o.depth() << " decisions per example). Each inner node is a filter <i>w</i> over the image, drawn as a heat map "
    << "(red: weights &gt; 0, blue: &lt; 0): an image goes to the lower branch (right) with probability "
    << "p = &sigma;(&beta;(<i>w</i>&middot;<i>x</i> + <i>b</i>)), &beta; = " << decimals(o.beta(), 2)
    << ", so the more its bright pixels fall on red, the more it goes right. At the right, each leaf's class "
    << "distribution";
  if (o.depth() > kShownLevels)
    h << " (below level " << kShownLevels << ", each box is a whole subtree: its leaves' distributions weighted by "
      << "the test images' path probability)";
  h << ". The model's output is the mixture of all leaves weighted by the path probabilities; the paper's test-time "
    << "rule takes the single most probable leaf instead.</p>\n<table><tr><th>prediction on " << test.size()
    << " test images</th><th>accuracy</th></tr><tr><td>mixture of leaves (the model's output)</td><td>"
    << decimals(100 * mixture_acc, 2) << "%</td></tr><tr><td>most probable leaf only</td><td>"
    << decimals(100 * max_path_acc, 2) << "%</td></tr></table>\n<p>";
  for (int64_t k = 0; k < Q.size(1); ++k)
    h << "<span style='display:inline-block;width:10px;height:10px;background:" << class_colour(k)
      << ";margin:0 3px 0 10px'></span>" << class_name(k, fashion);
  h << "</p>\n<p>The orange path is test image " << example << "'s most probable path.</p>\n"
    << "<div style='overflow-x:auto'>" << tree_svg(*tree, Q, mass, path, C, H, W, fashion) << "</div>\n";

  h << "<h3>Test image " << example << ": its path</h3>\n<p>" << img_tag(tree_grey_image(x), 84, "test image")
    << " True class: <b>" << class_name(label, fashion) << "</b>. The mixture predicts <b>" << class_name(mix_class, fashion)
    << "</b> (" << decimals(100 * mix[mix_class].item<double>(), 1) << "%); its most probable leaf (" << leaf
    << ", path probability " << decimals(r.leaf[0][leaf].item<double>(), 3) << ") says <b>"
    << class_name(leaf_class, fashion) << "</b> (" << decimals(100 * Q[leaf][leaf_class].item<double>(), 1) << "%).</p>\n"
    << "<p>At each node: the filter, and the image times the filter (<i>w</i> &odot; <i>x</i>: red pixels pushed the "
    << "image right, blue ones left; their sum plus <i>b</i>, times &beta;, is z). Pixels are normalised, so black "
    << "is negative: a black background under red weights pushes left.</p>\n"
    << "<table><tr><th>level</th><th>node</th><th>filter</th><th>image &times; filter</th><th>z</th>"
    << "<th>p(right)</th><th>turn</th><th>path probability</th></tr>\n";
  torch::Tensor w = tree->inner->weight.detach();
  for (size_t k = 0; k < path.size(); ++k) {
    const PathStep& s = path[k];
    const bool against = (s.right && s.p_right < 0.5) || (!s.right && s.p_right > 0.5);
    h << "<tr><td>" << k << "</td><td>" << s.node << "</td><td>" << img_tag(tree_heat_map(w[s.node].view({C, H, W})), kFilter, "filter")
      << "</td><td>" << img_tag(tree_heat_map(w[s.node].view({C, H, W}) * x), kFilter, "image times filter") << "</td><td>"
      << decimals(s.z, 2) << "</td><td>" << decimals(s.p_right, 3) << "</td><td>" << (s.right ? "right" : "left")
      << (against ? " (the less likely turn)" : "") << "</td><td>" << decimals(s.path_probability, 3) << "</td></tr>\n";
  }
  h << "<tr><td colspan='8' style='text-align:left'>leaf " << leaf << ": <svg width='260' height='34'>"
    << svg_bars(Q[leaf], 2, 4, 26, fashion) << "</svg></td></tr></table>\n";
  out.html = h.str();
  return out;
}

}  // namespace

std::string class_name(int64_t k, bool fashion) {
  static const char* const names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return fashion && k >= 0 && k < 10 ? names[k] : cat("class ", k);
}

TreeSection tree_report_section(const fs::path& run_dir, int64_t example) {
  const fs::path meta = run_dir / "model" / "model.json";
  if (!fs::exists(meta)) return {};
  nlohmann::json j = nlohmann::json::parse(read_text(meta), nullptr, false);
  if (j.is_discarded() || j.value("name", "") != "tree") return {};
  try {
    return section_of(run_dir, example);
  } catch (const Error& e) {
    std::string why;
    for (char ch : std::string(e.what())) why += ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '&' ? "&amp;" : std::string(1, ch);
    return {{{"error", e.what()}}, cat("<h2>The tree</h2>\n<p>The tree could not be drawn: ", why, "</p>\n")};
  }
}

}  // namespace retort
