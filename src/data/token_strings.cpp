// Token ids <-> the strings an OpenAI-style API shows for them (retort/tokenizer.h).
#include <algorithm>
#include <cstdio>
#include <set>

#include "retort/error.h"
#include "retort/tokenizer.h"

namespace retort {

namespace {

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    const size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 9;
    if (n == 9 || i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += n + 1;
  }
  return true;
}

std::string escaped(const std::string& bytes) {
  std::string out = "bytes:";
  char buf[5];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  }
  return out;
}

}  // namespace

TokenStrings::TokenStrings(const Tokenizer& tokenizer) {
  const int64_t V = tokenizer.vocab_size();
  texts_.resize(V);
  bytes_.resize(V);
  std::set<std::string> claimed;
  auto is_taken = [&](const std::string& t) { return claimed.count(t) > 0; };
  auto claim = [&](const std::string& t) { claimed.insert(t); };
  for (int32_t id = 0; id < V; ++id) bytes_[id] = tokenizer.decode({id});
  // First the ids the tokenizer itself gives for their text (a piece beats a byte-fallback id
  // that decodes to the same character), then the rest in id order.
  for (int32_t id = 0; id < V; ++id) {
    const std::string& b = bytes_[id];
    if (b.empty() || !valid_utf8(b) || is_taken(b)) continue;
    std::vector<int32_t> ids = tokenizer.encode(b);
    if (ids.size() == 1 && ids[0] == id) {
      claim(b);
      texts_[id] = b;
    }
  }
  for (int32_t id = 0; id < V; ++id) {
    if (!texts_[id].empty()) continue;
    std::string t = bytes_[id];
    if (!valid_utf8(t) || t.empty() || is_taken(t)) t = escaped(bytes_[id]);
    if (is_taken(t)) t += cat("#", id);
    claim(t);
    texts_[id] = t;
  }
  for (int32_t id = 0; id < V; ++id) index_.emplace_back(texts_[id], id);
  std::sort(index_.begin(), index_.end());
}

const std::string& TokenStrings::text(int32_t id) const {
  if (id < 0 || id >= int32_t(texts_.size())) fail("token id ", id, " is outside the vocabulary (", texts_.size(), " ids)");
  return texts_[id];
}

const std::string& TokenStrings::bytes(int32_t id) const {
  if (id < 0 || id >= int32_t(bytes_.size())) fail("token id ", id, " is outside the vocabulary (", bytes_.size(), " ids)");
  return bytes_[id];
}

int32_t TokenStrings::id(const std::string& text) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), std::make_pair(text, int32_t(-1)));
  return it != index_.end() && it->first == text ? it->second : -1;
}

}  // namespace retort
