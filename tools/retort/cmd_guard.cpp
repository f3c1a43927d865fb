// `retort guard`: the provider's side of watermarks. Keys (rotate, list), detection in text,
// and verification of a suspect model (radioactivity), which leaves evidence.json/html.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common.h"
#include "guard_dawn.h"
#include "text_inputs.h"
#include "retort/api_teacher.h"
#include "retort/error.h"
#include "retort/evidence.h"
#include "retort/fs.h"
#include "retort/generate.h"
#include "retort/guard.h"
#include "retort/radioactivity.h"
#include "retort/teacher_source.h"
#include "retort/text_data.h"
#include "retort/verifications.h"
#include "retort/watermark_store.h"

namespace retort::cli {

namespace guard_cmd {

struct Args {
  std::string db = "serve.db";
  std::string model;                // the marked model (its tokenizer); default: the newest marked one
  std::vector<std::string> inputs;  // detect: files, "-" for stdin
  std::string suspect, suspect_model, reference, texts, out;
  std::vector<std::string> baselines;
  double alpha = 1e-6, temperature = 0.7;
  int64_t max_positions = 200000, top = 4, prompts = 200, new_tokens = 48;
  ConfigArgs config;
};

std::string to_create(const std::string& db) {
  return "make a watermark key first: retort guard keys rotate --db " + db;
}

std::vector<int64_t> ids_of(const Tokenizer& t, const std::string& text) {
  const std::vector<int32_t> ids = t.encode(text);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

// The evaluation texts as ids of the marked model's tokenizer: --texts FILE, or the held-out
// text of text.* (unmarked text the provider holds).
torch::Tensor verification_tokens(const Args& a, const Options& o, const std::shared_ptr<Tokenizer>& tokenizer) {
  if (!a.texts.empty()) {
    std::string all;
    for (const Text& t : read_texts(a.texts)) all += t.text + "\n\n";
    const std::vector<int32_t> ids = tokenizer->encode(all);
    return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64);
  }
  return load_text_data(o.text, tokenizer).validation.tokens.to(torch::kInt64);
}

// A suspect's vocabulary must be the marked model's: green lists are over its ids.
void check_vocabulary(const LoadedModel& suspect, const std::string& name, const Tokenizer& marked,
                      const std::string& marked_name) {
  const int64_t v = suspect.spec.options.value("vocab_size", int64_t{0});
  std::shared_ptr<Tokenizer> t = suspect.tokenizer;
  if ((t && t->fingerprint() != marked.fingerprint()) || (v > 0 && v != marked.vocab_size()))
    fail("the suspect ", name, " has another vocabulary (", t ? t->describe() : cat(v, " ids"), ") than the marked model ",
         marked_name, " (", marked.describe(), "): watermarks are tested on the marked model's token ids");
}

// baselines: their mean green mass is subtracted from the model's (all see the windows the
// shortest context holds).
RadioactivityTest open_model_test(const LoadedModel& m, const torch::Tensor& tokens, const std::vector<Watermark>& marks,
                                  const Options& o, const Args& a, const std::vector<LoadedModel>& baselines = {}) {
  int64_t seq_len = std::min(o.text.seq_len, m.spec.options.value("max_seq_len", o.text.seq_len));
  std::vector<ModelImpl*> models;
  for (const LoadedModel& b : baselines) {
    seq_len = std::min(seq_len, b.spec.options.value("max_seq_len", o.text.seq_len));
    models.push_back(b.model.get());
  }
  return radioactivity_open_model(*m.model, tokens, marks, seq_len, o.data.eval_batch_size, a.max_positions,
                                  models.empty() ? a.top : 0, models);
}

// Prompts cut from the evaluation text: `count` windows of 32 ids, evenly spaced.
std::vector<std::vector<int64_t>> prompts_of(const torch::Tensor& tokens, int64_t count) {
  const int64_t len = 32, n = tokens.numel() / len;
  if (n < 1) fail("verify: the evaluation text is shorter than one prompt (", len, " tokens)");
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < std::min(count, n); ++i) {
    torch::Tensor w = tokens.narrow(0, (i * n / std::min(count, n)) * len, len).contiguous();
    out.emplace_back(w.data_ptr<int64_t>(), w.data_ptr<int64_t>() + len);
  }
  return out;
}

std::string decode(const Tokenizer& t, const std::vector<int64_t>& ids) {
  return t.decode(std::vector<int32_t>(ids.begin(), ids.end()));
}

// Black box: the suspect continues each prompt through its API (--temperature: below 1 its
// preferences, the learned green tokens among them, show more; a fixed seed per prompt).
std::vector<std::vector<int64_t>> api_continuations(const Options& o, const std::string& source, const Tokenizer& t,
                                                    const std::vector<std::vector<int64_t>>& prompts, int64_t new_tokens,
                                                    double temperature) {
  OpenedTeacher opened = open_teacher(source, o.teacher.source);
  ApiClient client(*opened.api);
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    nlohmann::json body = {{"model", opened.api->model}, {"prompt", decode(t, prompts[i])},
                           {"max_tokens", new_tokens}, {"temperature", temperature}, {"seed", int64_t(i)}};
    nlohmann::json answer = client.post("completions", body);
    if (!answer.contains("choices") || answer["choices"].empty() || !answer["choices"][0].value("text", nlohmann::json()).is_string())
      fail("verify: ", source, " answered a completion without choices[0].text");
    out.push_back(ids_of(t, answer["choices"][0]["text"].get<std::string>()));
  }
  return out;
}

// The reference model continues the same prompts locally, unmarked (the black-box control).
std::vector<std::vector<int64_t>> local_continuations(const LoadedModel& m, const std::vector<std::vector<int64_t>>& prompts,
                                                      int64_t new_tokens, double temperature) {
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SamplingOptions s;
    s.seed = uint64_t(i);
    s.temperature = temperature;
    torch::Tensor p = torch::tensor(prompts[i], torch::kInt64).view({1, -1});
    torch::Tensor all = generate(*m.model, p, new_tokens, s).contiguous();
    out.emplace_back(all.data_ptr<int64_t>() + p.size(1), all.data_ptr<int64_t>() + all.size(1));
  }
  return out;
}

// Writes evidence.json/html into --out (default evidence/<suspect's name>) and prints the headline.
void report(const Args& a, const Evidence& e) {
  const fs::path out =
      a.out.empty() ? fs::path("evidence") / fs::path(teacher_source_location(a.suspect)).filename() : fs::path(a.out);
  const EvidenceFiles files = write_evidence(out, e);
  // A durable row per verification, for the dashboard and the intel publisher (STIX notes).
  VerificationRow row;
  row.suspect = e.suspect;
  row.method = e.test.method + (e.test.detection.scheme.empty() ? "" : " " + e.test.detection.scheme);
  row.p_value = e.test.detection.p_value;
  row.tokens = e.test.detection.tokens_scored;
  row.watermark_key = e.test.detection.key_id;
  row.control_p_value = e.control.detection.p_value;
  row.headline = files.headline;
  row.evidence_path = files.json.parent_path().string();
  nlohmann::json usage = nlohmann::json::array();
  for (const MarkedUsage& u : e.usage)
    usage.push_back({{"key", u.api_key_name}, {"requests", u.requests}, {"prompt_tokens", u.prompt_tokens},
                     {"completion_tokens", u.completion_tokens}, {"first", u.first}, {"last", u.last}});
  row.usage = usage.dump();
  VerificationStore(open_existing_db(a.db, to_create(a.db))).append(row);
  std::printf("%s\n", files.headline.c_str());
  std::printf("evidence: %s\nreport:   %s\n", files.json.c_str(), files.html.c_str());
}

// A classifier suspect: DAWN's test, the control on the served classifier (or --reference).
void verify_classifier(const Args& a, WatermarkStore& store, const LoadedModel& suspect) {
  std::string reference = a.reference;
  for (const ServingRecord& r : store.serving())
    if (reference.empty() && r.tokenizer.empty()) reference = r.path;
  if (reference.empty()) fail("no classifier was served marked from '", a.db, "': name a control with --reference");
  LoadedModel ref = open_teacher(reference).local_model("retort guard verify --reference");
  if (!is_classifier(ref)) fail("the reference ", reference, " is a language model; the suspect ", a.suspect, " is a classifier");
  Evidence e;
  e.suspect = a.suspect;
  e.reference = reference;
  e.alpha = a.alpha;
  e.test = dawn_verification(store, suspect);
  e.control = dawn_verification(store, ref);
  e.usage = store.marked_usage(e.test.detection.key_id);
  report(a, e);
}

void verify(const Args& a) {
  const Options o = read_options(resolve_config(a.config));
  auto db = open_existing_db(a.db, to_create(a.db));
  WatermarkStore store(db);
  {
    OpenedTeacher suspect = open_teacher(a.suspect, o.teacher.source);
    if (suspect.model && is_classifier(*suspect.model)) return verify_classifier(a, store, *suspect.model);
  }
  const DatabaseMarks dm = database_marks(store, a.db, a.model);
  const std::string reference = a.reference.empty() ? dm.model_path : a.reference;
  LoadedModel ref = open_teacher(reference).local_model("retort guard verify --reference");
  check_vocabulary(ref, reference, *dm.tokenizer, dm.model_path);
  const torch::Tensor tokens = verification_tokens(a, o, dm.tokenizer);
  Evidence e;
  e.suspect = a.suspect;
  e.reference = reference;
  e.alpha = a.alpha;
  OpenedTeacher suspect = open_teacher(a.suspect, o.teacher.source);
  if (suspect.api) {
    const auto prompts = prompts_of(tokens, a.prompts);
    std::fprintf(stderr, "verify: %zu prompts to %s, %lld new tokens each\n", prompts.size(), a.suspect.c_str(),
                 static_cast<long long>(a.new_tokens));
    e.test = radioactivity_black_box(prompts, api_continuations(o, a.suspect, *dm.tokenizer, prompts, a.new_tokens, a.temperature), dm.marks);
    e.control = radioactivity_black_box(prompts, local_continuations(ref, prompts, a.new_tokens, a.temperature), dm.marks);
  } else {
    LoadedModel& m = suspect.local_model("retort guard verify --suspect");
    check_vocabulary(m, a.suspect, *dm.tokenizer, dm.model_path);
    std::vector<LoadedModel> base;
    for (const std::string& b : a.baselines) {
      if (b == reference || b == a.suspect)
        fail("verify: ", b, " is both a baseline and the ", b == a.suspect ? "suspect" : "control (--reference)",
             ": each is tested against the baselines, so they must be other models");
      base.push_back(open_teacher(b).local_model("retort guard verify --baseline"));
      check_vocabulary(base.back(), b, *dm.tokenizer, dm.model_path);
      e.baselines.push_back(b);
    }
    std::fprintf(stderr, "verify: teacher-forcing %s and the control %s%s on %lld tokens\n", a.suspect.c_str(),
                 reference.c_str(), base.empty() ? "" : cat(" against ", base.size(), " baseline(s)").c_str(),
                 static_cast<long long>(tokens.numel()));
    e.test = open_model_test(m, tokens, dm.marks, o, a, base);
    e.control = open_model_test(ref, tokens, dm.marks, o, a, base);
  }
  e.usage = store.marked_usage(e.test.detection.key_id);
  report(a, e);
}

void detect(const Args& a) {
  auto db = open_existing_db(a.db, to_create(a.db));
  WatermarkStore store(db);
  const DatabaseMarks dm = database_marks(store, a.db, a.model);
  if (a.inputs.empty()) fail("detect: name a text or JSONL file (or - for stdin)");
  for (const std::string& input : a.inputs)
    for (const Text& t : read_texts(input)) {
      const Detection d = detect_watermark(dm.marks, ids_of(*dm.tokenizer, t.text));
      nlohmann::json j = {{"source", t.source}};
      if (t.line > 0) j["line"] = t.line;
      j.update({{"scheme", d.scheme}, {"key_id", d.key_id}, {"tokens_scored", d.tokens_scored}, {"score", d.score},
                {"z", d.z}, {"p_value", d.p_value}});
      std::printf("%s\n", j.dump().c_str());
    }
}

}  // namespace guard_cmd

void register_guard(CLI::App& app) {
  using namespace guard_cmd;
  static Args a;
  auto* guard = app.add_subcommand(
      "guard",
      "The provider's side: watermark keys, detection of marked text, verification that a suspect model\n"
      "learned from marked answers, and distillation campaigns in the audit log (score, reasons, actions).\n"
      "`retort serve --set serve.watermark=kgw` marks answers with the current key of its --db, and with\n"
      "--config configs/guard.toml detects campaigns; these commands read the same database.\n"
      "Examples:\n"
      "  retort guard keys rotate --db serve.db\n"
      "  retort guard detect --db serve.db texts.jsonl\n"
      "  retort guard verify --db serve.db --suspect runs/thief/model\n"
      "  retort guard verify --db serve.db --suspect runs/thief/model --baseline runs/ours/model\n"
      "  retort guard verify --db serve.db --suspect openai:http://127.0.0.1:9090/v1 --suspect-model stolen\n"
      "  retort guard campaigns --db serve.db --config configs/guard.toml\n"
      "  retort guard act --db serve.db --key k-0042 --action block --reason \"confirmed harvest\"");
  guard->require_subcommand(1);
  auto add_db = [](CLI::App* cmd) { add_db_option(cmd, a.db); };

  auto* keys = guard->add_subcommand("keys", "Watermark keys: rotate, list.");
  keys->require_subcommand(1);
  auto* rotate = keys->add_subcommand(
      "rotate",
      "Make a new secret watermark key; it marks answers from the next `retort serve` start on. Older keys\n"
      "stay for detection. The secret is kept in the database only; its public id is printed.");
  add_db(rotate);
  rotate->callback([] {
    WatermarkStore store(std::make_shared<GuardDb>(a.db));
    const StoredWatermarkKey k = store.rotate();
    std::printf("%s\n", k.key.id.c_str());
    std::fprintf(stderr, "watermark key %s is now current in %s (%zu in all; older ones still detect)\n",
                 k.key.id.c_str(), a.db.c_str(), store.all().size());
  });
  auto* list = keys->add_subcommand("list", "List the watermark keys (id, created, current), never their secrets.");
  add_db(list);
  list->callback([] {
    WatermarkStore store(open_existing_db(a.db, to_create(a.db)));
    const auto all = store.all();
    if (all.empty()) std::printf("no watermark keys in %s; %s\n", a.db.c_str(), to_create(a.db).c_str());
    for (size_t i = 0; i < all.size(); ++i)
      std::printf("%s  %s%s\n", all[i].key.id.c_str(), iso_utc(all[i].created).c_str(), i == 0 ? "  current" : "");
  });

  auto* det = guard->add_subcommand(
      "detect",
      "Test texts for the database's watermarks: one JSON line per text (per line of a .jsonl file, whose\n"
      "lines are {\"text\": ...}) with scheme, key_id, tokens_scored (distinct (context, token) pairs),\n"
      "score, z and p_value (exact tail, corrected for the number of keys tried). Text is tokenized with\n"
      "the newest marked model's tokenizer (--model to name another).\n"
      "Example: retort guard detect --db serve.db answers.jsonl");
  add_db(det);
  det->add_option("inputs", a.inputs, "text or JSONL files; - reads stdin")->required();
  det->add_option("--model", a.model, "the marked model whose tokenizer reads the text");
  det->callback([] { detect(a); });

  auto* ver = guard->add_subcommand(
      "verify",
      "Test whether a suspect model learned from marked answers (radioactivity, Sander et al. 2024).\n"
      "Open model (a model folder, .gguf or safetensors export): it is teacher-forced on unmarked text\n"
      "(text.* held-out text, or --texts) and its top predictions are scored against the green lists of\n"
      "the true contexts. Black box (openai:URL): it continues prompts cut from that text and what it\n"
      "writes is scored, n-grams of the prompts left out. The same test on a reference model (--reference,\n"
      "by default the marked model itself, whose weights carry no mark) is the control. With --baseline\n"
      "(models trained without your answers, ideally like the suspect) the open-model test is paired: their\n"
      "mean green mass is subtracted context by context, which finds far smaller shares of marked data.\n"
      "Writes evidence.json and evidence.html (--out, default evidence/<suspect>): p-value, tokens\n"
      "scored, method, key, the control, and the API keys whose answers were marked with that key.\n"
      "Classifiers (a folder of an image model): DAWN's test, the suspect's classes on the inputs the server\n"
      "answered with a keyed wrong class, where its class is not the served model's top class, against\n"
      "chance (binomial, 1 / (classes - 1) each; the served model is reopened for its top classes).");
  add_db(ver);
  add_config_args(ver, a.config);
  ver->add_option("--suspect", a.suspect, "the model to test: a folder, .gguf, safetensors, or openai:URL")->required();
  ver->add_option("--suspect-model", a.suspect_model, "openai: suspects: the endpoint's model id");
  ver->add_option("--reference", a.reference, "the control model (default: the marked model)");
  ver->add_option("--baseline", a.baselines,
                  "open model: a model trained without our answers (ideally of the suspect's kind, on the same\n"
                  "public text); repeatable. Their mean green mass is subtracted from the suspect's and the\n"
                  "control's, context by context: a paired test that sees much smaller shifts (implies --top 0)");
  ver->add_option("--model", a.model, "the marked model (default: the newest one served marked)");
  ver->add_option("--texts", a.texts, "text or JSONL to teacher-force on / cut prompts from (default: text.* held out)");
  ver->add_option("--out", a.out, "folder for evidence.json and evidence.html");
  ver->add_option("--alpha", a.alpha, "p-values below this count as evidence")->capture_default_str()->check(CLI::Range(1e-300, 0.5));
  ver->add_option("--max-positions", a.max_positions, "open model: predictions scored at most")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(100), int64_t(1) << 40));
  ver->add_option("--top", a.top,
                  "open model: the suspect's most likely tokens scored at each position (exact binomial test);\n"
                  "0: its probability mass on the green list per distinct context (normal approximation)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  ver->add_option("--prompts", a.prompts, "black box: prompts sent")->capture_default_str()->check(CLI::Range(1, 100000));
  ver->add_option("--temperature", a.temperature, "black box: sampling temperature asked of the suspect")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 2.0));
  ver->add_option("--new-tokens", a.new_tokens, "black box: tokens asked per prompt")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  ver->callback([] {
    if (!a.suspect_model.empty()) a.config.sets.push_back("teacher.api_model=" + a.suspect_model);
    verify(a);
  });
  register_guard_campaigns(*guard);
  register_guard_simulate(*guard);
}

}  // namespace retort::cli
