// DAWN verification of a classifier suspect (guard_dawn.h).
#include "guard_dawn.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "retort/dawn.h"
#include "retort/error.h"
#include "retort/normalisation.h"
#include "retort/teacher_source.h"

namespace retort::cli {

bool is_classifier(const LoadedModel& m) { return !m.tokenizer && m.spec.name != "gpt"; }

namespace {

// A classifier's top class on each marked input (pixels 0..255, normalised as it was trained).
std::vector<int64_t> classifier_predictions(const LoadedModel& m, const std::vector<DawnMark>& marks) {
  const InputNormalisation norm = input_normalisation(m.dir);
  const nlohmann::json& o = m.spec.options;
  const int64_t C = o.value("in_channels", int64_t{1}), H = o.value("height", int64_t{28}), W = o.value("width", int64_t{28});
  std::vector<int64_t> out;
  torch::NoGradGuard no_grad;
  m.model->eval();
  for (size_t i = 0; i < marks.size(); i += 256) {
    const size_t n = std::min<size_t>(256, marks.size() - i);
    std::vector<float> flat;
    for (size_t j = i; j < i + n; ++j) {
      if (int64_t(marks[j].pixels.size()) != C * H * W)
        fail("the suspect takes ", C, "x", H, "x", W, " inputs; the marked answers were to inputs of ", marks[j].pixels.size(),
             " values (another kind of classifier)");
      for (float p : marks[j].pixels) flat.push_back(float((p / 255.0 - norm.mean) / norm.std));
    }
    torch::Tensor x = torch::from_blob(flat.data(), {int64_t(n), C, H, W}, torch::kFloat32).clone();
    torch::Tensor top = m.model->forward(x).logits.argmax(-1).contiguous();
    out.insert(out.end(), top.data_ptr<int64_t>(), top.data_ptr<int64_t>() + n);
  }
  return out;
}

// The served model's top class on each marked input: the class its answer left out. The model
// is the one the serving records name for the key and the mark's model id (the newest start).
std::vector<int64_t> served_tops(const WatermarkStore& store, const std::string& key_id, const std::vector<DawnMark>& marks,
                                 std::map<std::string, LoadedModel>& opened) {
  std::vector<int64_t> out(marks.size(), -1);
  std::map<std::string, std::vector<size_t>> by_model;
  for (size_t i = 0; i < marks.size(); ++i) by_model[marks[i].model].push_back(i);
  const std::vector<ServingRecord> records = store.serving();
  for (const auto& [model, rows] : by_model) {
    std::string path;
    for (const ServingRecord& r : records)
      if (path.empty() && r.key_id == key_id && r.model == model && r.tokenizer.empty()) path = r.path;
    if (path.empty())
      fail("the guard database has DAWN marks of model '", model, "' under key ", key_id,
           " but no record of where that model was served from: its top classes are needed to test a suspect");
    auto it = opened.find(path);
    if (it == opened.end())
      it = opened.emplace(path, open_teacher(path).local_model("retort guard verify (the marked classifier's top classes)")).first;
    std::vector<DawnMark> some;
    for (size_t i : rows) some.push_back(marks[i]);
    const std::vector<int64_t> top = classifier_predictions(it->second, some);
    for (size_t j = 0; j < rows.size(); ++j) out[rows[j]] = top[j];
  }
  return out;
}

}  // namespace

RadioactivityTest dawn_verification(const WatermarkStore& store, const LoadedModel& m) {
  RadioactivityTest best;
  best.method = "dawn";
  int64_t keys = 0;
  std::vector<int64_t> predicted, answered, tops;
  int64_t classes = 0;
  std::map<std::string, LoadedModel> opened;
  for (const StoredWatermarkKey& k : store.all()) {
    const std::vector<DawnMark> marks = store.dawn_marks(k.key.id);
    if (marks.empty()) continue;
    ++keys;
    std::vector<int64_t> p = classifier_predictions(m, marks), q, t = served_tops(store, k.key.id, marks, opened);
    for (const DawnMark& d : marks) q.push_back(d.answered);
    const Detection d = dawn_test(k.key.id, p, q, t, marks[0].classes);
    if (keys == 1 || d.p_value < best.detection.p_value)
      best.detection = d, best.predictions = int64_t(marks.size()), predicted = p, answered = q, tops = t,
      classes = marks[0].classes;
  }
  if (keys == 0) fail("no classifier answer in the guard database was marked (DAWN): nothing to test a classifier against");
  best.detection.p_value = std::min(1.0, best.detection.p_value * double(keys));
  for (int step = 1; step <= 20; ++step) {
    const long take = long(std::max<size_t>(1, predicted.size() * size_t(step) / 20));
    const Detection d = dawn_test(best.detection.key_id, std::vector<int64_t>(predicted.begin(), predicted.begin() + take),
                                  std::vector<int64_t>(answered.begin(), answered.begin() + take),
                                  std::vector<int64_t>(tops.begin(), tops.begin() + take), classes);
    best.growth.emplace_back(double(d.tokens_scored), -std::log10(std::max(1e-300, std::min(1.0, d.p_value * double(keys)))));
  }
  return best;
}

}  // namespace retort::cli
