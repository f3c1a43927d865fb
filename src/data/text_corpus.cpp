// Text corpora: the KJV (via Debian's `bible` program), files, folders and JSONL;
// the held-out split by document; tokenizing a corpus into one token stream.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/progress.h"
#include "retort/text.h"

namespace retort {

namespace {

// ---- the King James Bible ------------------------------------------------------------

bool program_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((fs::path(dir) / name).c_str(), X_OK) == 0) return true;
  return false;
}

std::string run_bible() {
  if (!program_on_path("bible"))
    fail(
        "the kjv corpus needs the `bible` program: install Debian's bible-kjv (apt-get install "
        "bible-kjv, or run "
        "scripts/setup)");
  const char* command = "bible Gen1:1-Rev22:21 2>&1";
  FILE* pipe = ::popen(command, "r");
  if (!pipe) fail("cannot run `", command, "`");
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = ::pclose(pipe);
  if (status != 0) fail("`", command, "` failed (status ", status, "): ", out.substr(0, 200));
  return out;
}

// `bible` prints, per chapter: an empty line, the heading ("Genesis 1"), an empty line, then
// verses as "  N text" wrapped at 80 columns, continuation lines starting at column 0.
std::vector<std::string> parse_bible(const std::string& raw) {
  std::vector<std::string> chapters;
  std::stringstream in(raw);
  std::string line;
  bool after_blank = false;
  while (std::getline(in, line)) {
    if (line.empty()) {
      after_blank = true;
      continue;
    }
    size_t p = line.find_first_not_of(' ');
    size_t digits_end = line.find_first_not_of("0123456789", p);
    bool verse =
        p > 0 && digits_end != std::string::npos && digits_end > p && line[digits_end] == ' ';
    if (verse) {
      if (chapters.empty())
        fail("unexpected output of `bible`: a verse before any chapter heading: ", line);
      chapters.back() += '\n';
      chapters.back().append(line, digits_end + 1, std::string::npos);
    } else if (after_blank) {
      chapters.push_back(line);  // the heading
    } else {
      if (chapters.empty()) fail("unexpected output of `bible`: ", line);
      chapters.back() += ' ';  // a wrapped verse goes on
      chapters.back() += line;
    }
    after_blank = false;
  }
  return chapters;
}

TextCorpus load_kjv() {
  TextCorpus c;
  c.documents = parse_bible(run_bible());
  if (c.documents.size() < 2)
    fail("`bible` gave ", c.documents.size(), " chapters; is bible-kjv installed completely?");
  c.source = cat("kjv (bible-kjv, ", c.documents.size(), " chapters)");
  return c;
}

// ---- files ------------------------------------------------------------------------

bool is_jsonl(const fs::path& p) { return p.extension() == ".jsonl"; }

void read_jsonl(const fs::path& path, std::vector<std::string>& out) {
  std::stringstream in(read_text(path));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto where = [&] { return cat(path.string(), ":", line_no); };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail(where(), ": not valid JSON (", e.what(), ")");
    }
    if (!j.is_object())
      fail(where(), ": expected a JSON object with a \"text\" field, got a ", j.type_name());
    auto it = j.find("text");
    if (it == j.end()) fail(where(), ": no \"text\" field");
    if (!it->is_string()) fail(where(), ": \"text\" is a ", it->type_name(), ", expected a string");
    out.push_back(it->get<std::string>());
  }
}

void read_file_into(const fs::path& path, std::vector<std::string>& out) {
  if (is_jsonl(path))
    read_jsonl(path, out);
  else
    out.push_back(read_text(path));
}

}  // namespace

// ---- public API ------------------------------------------------------------------------

int64_t TextCorpus::bytes() const {
  int64_t n = 0;
  for (const auto& d : documents) n += static_cast<int64_t>(d.size());
  return n;
}

TextCorpus load_text_corpus(const std::string& source) {
  if (source == "kjv") return load_kjv();
  fs::path path(source);
  std::error_code ec;
  if (!fs::exists(path, ec))
    fail("text corpus ", path, " does not exist (give a file, a folder or \"kjv\")");
  TextCorpus c;
  std::vector<std::string> docs;
  if (fs::is_directory(path)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) read_file_into(f, docs);
    c.source = cat(path.string(), " (", files.size(), " files)");
  } else {
    read_file_into(path, docs);
    c.source = path.string();
  }
  for (auto& d : docs)
    if (!d.empty()) c.documents.push_back(std::move(d));
  if (c.documents.empty())
    fail("text corpus ", path, " has no text (", docs.size(), " empty documents)");
  return c;
}

CorpusSplit split_corpus(const TextCorpus& c, double fraction, uint64_t seed) {
  if (!(fraction > 0 && fraction < 1))
    fail("validation fraction must be in (0, 1), got ", fraction);
  CorpusSplit s;
  int64_t n = static_cast<int64_t>(c.documents.size());
  // The top 53 bits as a double in [0, 1).
  constexpr double kScale = 1.0 / 9007199254740992.0;
  for (int64_t i = 0; i < n; ++i) {
    double u = static_cast<double>(mix_seed(seed, static_cast<uint64_t>(i)) >> 11) * kScale;
    (u < fraction ? s.validation : s.train).documents.push_back(c.documents[i]);
  }
  int64_t nv = static_cast<int64_t>(s.validation.documents.size()), nt = n - nv;
  if (nv == 0 || nt == 0)
    fail("splitting ", n, " documents of ", c.source, " at validation fraction ", fraction,
         " (seed ", seed, ") leaves the ", nv == 0 ? "validation" : "training",
         " side empty; use more documents or another fraction");
  s.train.source = cat(c.source, ", train split (", nt, " of ", n, " documents)");
  s.validation.source = cat(c.source, ", validation split (", nv, " of ", n, " documents)");
  return s;
}

int64_t TokenSet::size() const { return tokens.defined() ? tokens.size(0) : 0; }

TokenSet tokenize(const TextCorpus& c, const Tokenizer& t) {
  const std::string separator = "\n\n";
  std::vector<int32_t> sep_ids = t.encode(separator);
  std::vector<int32_t> all;
  all.reserve(static_cast<size_t>(c.bytes() / 2));
  int64_t n = static_cast<int64_t>(c.documents.size()), done_bytes = 0;
  // Only a corpus that takes more than a moment gets a bar.
  std::unique_ptr<ProgressBar> bar;
  if (c.bytes() > (8 << 20)) bar = std::make_unique<ProgressBar>("tokenize", n, "doc");
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) all.insert(all.end(), sep_ids.begin(), sep_ids.end());
    std::vector<int32_t> ids = t.encode(c.documents[i]);
    all.insert(all.end(), ids.begin(), ids.end());
    done_bytes += static_cast<int64_t>(c.documents[i].size());
    if (bar) bar->update(i + 1, i + 1, cat(done_bytes >> 20, " MB"));
  }
  if (bar) bar->finish(cat(all.size(), " tokens"));
  TokenSet s;
  s.tokens =
      torch::from_blob(all.data(), {static_cast<int64_t>(all.size())}, torch::kInt32).clone();
  s.bytes = c.bytes() + (n > 0 ? (n - 1) * static_cast<int64_t>(separator.size()) : 0);
  s.vocab_size = t.vocab_size();
  s.source = cat(c.source, ", ", t.describe());
  return s;
}

}  // namespace retort
