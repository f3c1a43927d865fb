// Radioactivity tests (retort/radioactivity.h): the suspect's predictions, or its writing,
// turned into (context, token) pairs per key and scored by the detector.
#include "retort/radioactivity.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <map>
#include <set>

#include "retort/error.h"

namespace retort {

namespace {

// Pairs for one key: contexts (h ids each, row-major) and their tokens.
struct Pairs {
  std::vector<int64_t> contexts, tokens;
};

// The best key's detection over its pairs, its p-value times the number of keys, and how
// -log10 p grew over the first 5%, 10%, ... of its pairs.
RadioactivityTest best_of(const std::string& method, const std::vector<Watermark>& marks,
                          const std::vector<Pairs>& pairs, int64_t predictions) {
  if (marks.empty()) fail("no watermark key to test against: add one with `retort guard keys rotate`");
  RadioactivityTest out;
  out.method = method;
  out.predictions = predictions;
  size_t best = 0;
  for (size_t k = 0; k < marks.size(); ++k) {
    Detection d = detect_watermark_pairs(marks[k], pairs[k].contexts, pairs[k].tokens);
    if (k == 0 || d.p_value < out.detection.p_value) out.detection = d, best = k;
  }
  out.detection.p_value = std::min(1.0, out.detection.p_value * double(marks.size()));
  const Pairs& p = pairs[best];
  const size_t h = size_t(marks[best].options().context), n = p.tokens.size();
  for (int step = 1; step <= 20 && n > 0; ++step) {
    const size_t take = std::max<size_t>(1, n * size_t(step) / 20);
    std::vector<int64_t> c(p.contexts.begin(), p.contexts.begin() + long(take * h));
    std::vector<int64_t> t(p.tokens.begin(), p.tokens.begin() + long(take));
    Detection d = detect_watermark_pairs(marks[best], c, t);
    const double pv = std::min(1.0, d.p_value * double(marks.size()));
    out.growth.emplace_back(double(d.tokens_scored), -std::log10(std::max(pv, 1e-300)));
  }
  return out;
}

// Teacher-forces the suspect over windows of seq_len ids of `tokens`, `batch` windows at a time:
// visit(ids, logits, positions) sees each window's ids, its logits (seq_len, V) on the CPU and how
// many of its first positions to score (every one with a next token in the window, until
// max_positions in all; 0: no limit). Returns the positions scored; the suspect's mode is restored.
using WindowVisit = std::function<void(const int64_t* ids, const torch::Tensor& logits, int64_t positions)>;
int64_t teacher_force(ModelImpl& suspect, const torch::Tensor& tokens, int64_t seq_len, int64_t batch,
                      int64_t max_positions, const WindowVisit& visit) {
  if (tokens.dim() != 1 || tokens.numel() < seq_len) fail("radioactivity: need at least ", seq_len, " tokens of text");
  if (seq_len < 2 || batch < 1) fail("radioactivity: seq_len >= 2 and batch >= 1, got ", seq_len, ", ", batch);
  struct ModeRestorer {
    ModelImpl& m;
    bool training;
    ~ModeRestorer() { m.train(training); }
  } restore{suspect, suspect.is_training()};
  suspect.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = tokens.to(torch::kInt64).contiguous();
  const int64_t windows = ids.numel() / seq_len;
  const torch::Device device = model_device(suspect);
  int64_t scored = 0;
  for (int64_t w0 = 0; w0 < windows && !(max_positions > 0 && scored >= max_positions); w0 += batch) {
    const int64_t B = std::min(batch, windows - w0);
    torch::Tensor x = ids.narrow(0, w0 * seq_len, B * seq_len).view({B, seq_len});
    torch::Tensor logits = suspect.forward(x.to(device)).logits;
    if (logits.dim() != 3 || logits.size(1) != seq_len)
      fail("radioactivity: the suspect maps ids ", x.sizes(), " to ", logits.sizes(), "; a language model gives (batch, time, vocab)");
    logits = logits.to(torch::kCPU);
    for (int64_t b = 0; b < B && !(max_positions > 0 && scored >= max_positions); ++b) {
      const int64_t positions = max_positions > 0 ? std::min(seq_len - 1, max_positions - scored) : seq_len - 1;
      visit(x[b].data_ptr<int64_t>(), logits[b], positions);
      scored += positions;
    }
  }
  return scored;
}

// The h ids before the token after position t of a window (ids t-h+1 .. t); false when the
// window does not hold them.
bool context_at(const int64_t* ids, int64_t t, int64_t h, std::vector<int64_t>& context) {
  if (t + 1 < h) return false;
  context.assign(ids + t + 1 - h, ids + t + 1);
  return true;
}

// P(Z >= z) for a standard normal Z.
double normal_upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

// Each distinct context's predicted distribution, averaged over its occurrences in the text, for
// one h. Contexts beyond `limit` are not added (their occurrences still count as predictions).
struct ContextMeans {
  int64_t h = 1;
  std::map<std::vector<int64_t>, std::pair<std::vector<double>, int64_t>> sums;  // context -> (sum of p, n)
};

// Teacher-forces `model` and adds its distributions to every ContextMeans in `means`, each holding
// at most ~512 MB of sums (V doubles per context).
int64_t add_context_means(ModelImpl& model, const torch::Tensor& tokens, int64_t seq_len, int64_t batch,
                          int64_t max_positions, std::vector<ContextMeans>& means) {
  std::vector<int64_t> context;
  return teacher_force(model, tokens, seq_len, batch, max_positions,
                       [&](const int64_t* ids, const torch::Tensor& logits, int64_t positions) {
    const torch::Tensor probs = torch::softmax(logits.to(torch::kFloat64), -1).contiguous();  // (T, V)
    const int64_t V = probs.size(1);
    const size_t limit = size_t(std::max<int64_t>(1, (int64_t(512) << 20) / (8 * V)));
    for (int64_t t = 0; t < positions; ++t) {
      const double* p = probs[t].data_ptr<double>();
      for (ContextMeans& m : means) {
        if (!context_at(ids, t, m.h, context)) continue;
        auto it = m.sums.find(context);
        if (it == m.sums.end()) {
          if (m.sums.size() >= limit) continue;
          it = m.sums.emplace(context, std::make_pair(std::vector<double>(size_t(V), 0.0), int64_t{0})).first;
        }
        if (int64_t(it->second.first.size()) != V) fail("radioactivity: the models give ", it->second.first.size(), " and ", V, " ids");
        for (int64_t v = 0; v < V; ++v) it->second.first[size_t(v)] += p[v];
        ++it->second.second;
      }
    }
  });
}

// The suspect's green probability mass per distinct context, less the baseline's when there is one
// (see radioactivity.h, top = 0).
RadioactivityTest green_mass_test(ModelImpl& suspect, const std::vector<ModelImpl*>& baselines, const torch::Tensor& tokens,
                                  const std::vector<Watermark>& marks, int64_t seq_len, int64_t batch,
                                  int64_t max_positions) {
  if (marks.empty()) fail("no watermark key to test against: add one with `retort guard keys rotate`");
  std::set<int64_t> hs;
  for (const Watermark& m : marks) hs.insert(m.options().context);
  std::vector<ContextMeans> of_suspect, of_baseline;
  for (int64_t h : hs) of_suspect.push_back({h, {}}), of_baseline.push_back({h, {}});
  const int64_t predictions = add_context_means(suspect, tokens, seq_len, batch, max_positions, of_suspect);
  for (ModelImpl* b : baselines) add_context_means(*b, tokens, seq_len, batch, max_positions, of_baseline);  // their mean
  const bool baseline = !baselines.empty();
  RadioactivityTest out;
  out.method = baseline ? "open-model (green mass, paired)" : "open-model (green mass)";
  out.predictions = predictions;
  std::vector<std::vector<std::pair<double, double>>> growth(marks.size());
  size_t best = 0;
  std::vector<double> d;
  for (size_t k = 0; k < marks.size(); ++k) {
    const Watermark& mark = marks[k];
    const double gamma = mark.options().gamma;
    const size_t at = size_t(std::distance(hs.begin(), hs.find(mark.options().context)));
    double sum = 0, var = 0;
    int64_t n = 0;
    for (const auto& [context, s] : of_suspect[at].sums) {
      d.assign(s.first.size(), 0.0);
      for (size_t v = 0; v < d.size(); ++v) d[v] = s.first[v] / double(s.second);
      double expected = gamma;  // of the green mass of one distribution
      if (baseline) {
        auto b = of_baseline[at].sums.find(context);
        if (b == of_baseline[at].sums.end() || b->second.first.size() != d.size()) continue;
        for (size_t v = 0; v < d.size(); ++v) d[v] -= b->second.first[v] / double(b->second.second);
        expected = 0;  // of a difference of two distributions
      }
      double green = 0, square = 0;
      for (size_t v = 0; v < d.size(); ++v) {
        square += d[v] * d[v];
        if (mark.green(context.data(), int64_t(v))) green += d[v];
      }
      sum += green - expected;
      var += gamma * (1 - gamma) * square;
      if (++n % 64 == 0) growth[k].emplace_back(double(n), var > 0 ? sum / std::sqrt(var) : 0.0);
    }
    Detection det;
    det.scheme = watermark_scheme_name(mark.options().scheme);
    det.key_id = mark.key().id;
    det.tokens_scored = n;
    det.score = sum + (baseline ? 0.0 : gamma * double(n));  // green mass (paired: its excess over the baseline's)
    det.z = var > 0 ? sum / std::sqrt(var) : 0;
    det.p_value = var > 0 ? normal_upper_tail(det.z) : 1;
    if (k == 0 || det.p_value < out.detection.p_value) out.detection = det, best = k;
  }
  out.detection.p_value = std::min(1.0, out.detection.p_value * double(marks.size()));
  for (const auto& [n, z] : growth[best])
    out.growth.emplace_back(n, -std::log10(std::max(1e-300, std::min(1.0, normal_upper_tail(z) * double(marks.size())))));
  return out;
}

}  // namespace

RadioactivityTest radioactivity_open_model(ModelImpl& suspect, const torch::Tensor& tokens,
                                           const std::vector<Watermark>& marks, int64_t seq_len,
                                           int64_t batch, int64_t max_positions, int64_t top,
                                           const std::vector<ModelImpl*>& baselines) {
  if (top < 0) fail("radioactivity: top must be >= 0 (0: the green probability mass), got ", top);
  if (!baselines.empty() && top != 0) fail("radioactivity: a baseline model is subtracted from the green mass (top = 0) only, not top ", top);
  if (top == 0) return green_mass_test(suspect, baselines, tokens, marks, seq_len, batch, max_positions);
  std::vector<Pairs> pairs(marks.size());
  std::vector<int64_t> context;
  const int64_t predictions = teacher_force(suspect, tokens, seq_len, batch, max_positions,
                                            [&](const int64_t* ids, const torch::Tensor& logits, int64_t positions) {
    // (T, k): the k most likely tokens after each position, most likely first
    const torch::Tensor pred = std::get<1>(logits.topk(std::min(top, logits.size(-1)), -1)).contiguous();
    auto pa = pred.accessor<int64_t, 2>();
    for (int64_t t = 0; t < positions; ++t)
      for (size_t k = 0; k < marks.size(); ++k) {
        if (!context_at(ids, t, marks[k].options().context, context)) continue;
        for (int64_t j = 0; j < pa.size(1); ++j) {
          pairs[k].contexts.insert(pairs[k].contexts.end(), context.begin(), context.end());
          pairs[k].tokens.push_back(pa[t][j]);
        }
      }
  });
  return best_of("open-model", marks, pairs, predictions);
}

RadioactivityTest radioactivity_black_box(const std::vector<std::vector<int64_t>>& prompts,
                                          const std::vector<std::vector<int64_t>>& outputs,
                                          const std::vector<Watermark>& marks) {
  if (prompts.size() != outputs.size()) fail("radioactivity: ", prompts.size(), " prompts but ", outputs.size(), " outputs");
  std::vector<Pairs> pairs(marks.size());
  int64_t predictions = 0;
  for (size_t k = 0; k < marks.size(); ++k) {
    const size_t h = size_t(marks[k].options().context);
    // (context, token) n-grams of the prompts: a suspect repeating its prompt shows nothing
    std::set<std::vector<int64_t>> in_prompts;
    for (const auto& p : prompts)
      for (size_t i = h; i < p.size(); ++i) in_prompts.insert(std::vector<int64_t>(p.begin() + long(i - h), p.begin() + long(i) + 1));
    for (size_t j = 0; j < outputs.size(); ++j) {
      std::vector<int64_t> all = prompts[j];  // the context of the first written tokens is the prompt's end
      all.insert(all.end(), outputs[j].begin(), outputs[j].end());
      for (size_t i = std::max(h, prompts[j].size()); i < all.size(); ++i) {
        if (k == 0) ++predictions;
        std::vector<int64_t> gram(all.begin() + long(i - h), all.begin() + long(i) + 1);
        if (in_prompts.count(gram)) continue;
        pairs[k].contexts.insert(pairs[k].contexts.end(), gram.begin(), gram.end() - 1);
        pairs[k].tokens.push_back(gram.back());
      }
    }
  }
  return best_of("black-box", marks, pairs, predictions);
}

}  // namespace retort
