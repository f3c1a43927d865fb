// Prompt fingerprints and the reference index (retort/telemetry.h).
#include "retort/telemetry.h"

#include <algorithm>
#include <cctype>

#include "retort/hash.h"

namespace retort {

namespace {

// FNV-1a of a shingle, then splitmix64's finalizer: SimHash needs every bit to be a fair coin.
uint64_t mixed(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

uint64_t shingle_hash(const std::vector<std::string>& w, size_t at, size_t n) {
  Hasher h;
  for (size_t i = at; i < at + n; ++i) h.update(w[i]).update(" ");
  return mixed(h.value());
}

template <typename Fn>
void for_shingles(const std::vector<std::string>& w, size_t n, Fn&& fn) {
  if (w.size() < n) return;
  for (size_t i = 0; i + n <= w.size(); ++i) fn(shingle_hash(w, i, n));
}

}  // namespace

std::vector<std::string> prompt_words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      cur.push_back(char(std::tolower(c)));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

namespace {

uint64_t simhash_of(const std::vector<std::string>& w) {
  if (w.empty()) return 0;
  const size_t n = w.size() >= 3 ? 3 : 1;
  int32_t votes[64] = {};
  for_shingles(w, n, [&](uint64_t h) {
    for (int b = 0; b < 64; ++b) votes[b] += (h >> b) & 1 ? 1 : -1;
  });
  uint64_t out = 0;
  for (int b = 0; b < 64; ++b)
    if (votes[b] > 0) out |= uint64_t{1} << b;
  return out ? out : 1;  // 0 means "no words"
}

uint64_t prefix_of(const std::vector<std::string>& w, int words) {
  if (w.empty()) return 0;
  const uint64_t h = shingle_hash(w, 0, std::min(w.size(), size_t(std::max(1, words))));
  return h ? h : 1;
}

}  // namespace

uint64_t prompt_simhash(const std::string& text) { return simhash_of(prompt_words(text)); }

uint64_t prompt_prefix(const std::string& text, int words) { return prefix_of(prompt_words(text), words); }

PromptPrint fingerprint(const std::string& text, const ReferenceIndex* reference) {
  const std::vector<std::string> w = prompt_words(text);
  return {simhash_of(w), prefix_of(w, 3), reference ? reference->locate_words(w) : -1};
}

int hamming(uint64_t a, uint64_t b) { return __builtin_popcountll(a ^ b); }

ReferenceIndex::ReferenceIndex(const std::vector<std::string>& documents, int chunk_words) {
  int64_t words_in_chunk = 0;
  for (const std::string& doc : documents) {
    const std::vector<std::string> w = prompt_words(doc);
    for (size_t i = 0; i + 5 <= w.size(); ++i) {
      shingle_chunk_.emplace(shingle_hash(w, i, 5), int32_t(chunks_));
      if (++words_in_chunk >= chunk_words) words_in_chunk = 0, ++chunks_;
    }
  }
  if (words_in_chunk > 0) ++chunks_;
}

int64_t ReferenceIndex::locate(const std::string& text) const { return locate_words(prompt_words(text)); }

int64_t ReferenceIndex::locate_words(const std::vector<std::string>& w) const {
  if (shingle_chunk_.empty()) return -1;
  std::unordered_map<int32_t, int32_t> votes;
  int32_t best = -1, best_votes = 0;
  for_shingles(w, 5, [&](uint64_t h) {
    auto it = shingle_chunk_.find(h);
    if (it == shingle_chunk_.end()) return;
    const int32_t v = ++votes[it->second];
    if (v > best_votes || (v == best_votes && it->second < best)) best = it->second, best_votes = v;
  });
  return best;
}

}  // namespace retort
