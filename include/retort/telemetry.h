// What the campaign detector (retort/detect.h) needs to know of a prompt without keeping it:
// locality-sensitive fingerprints and where in a reference corpus the prompt comes from. The
// audit row of each request carries them (retort/guard.h); raw prompt text is kept only when
// the operator asks (guard.store_prompts). No torch, no HTTP.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace retort {

// Lower-cased words of letters and digits (everything else separates).
std::vector<std::string> prompt_words(const std::string& text);

// 64-bit SimHash (Charikar 2002) over word 3-shingles (single words for shorter prompts):
// prompts that share most of their shingles, such as the variants of one template, land a few
// bits apart; unrelated prompts ~32 bits apart. 0 for a prompt without words.
uint64_t prompt_simhash(const std::string& text);
// Hash of the first `words` words: prompts filled into one template share it. 0 without words.
uint64_t prompt_prefix(const std::string& text, int words = 3);
int hamming(uint64_t a, uint64_t b);

class ReferenceIndex;

// What the audit row keeps of a prompt: its SimHash, opening and passage, from one pass over its words.
struct PromptPrint {
  uint64_t simhash = 0, prefix = 0;
  int64_t ref_chunk = -1;
};
PromptPrint fingerprint(const std::string& text, const ReferenceIndex* reference);

// A reference corpus cut into chunks of about `chunk_words` words, indexed by the word
// 5-shingles each chunk holds, so that a prompt cut from the corpus can be placed in it. The
// coverage signal counts the distinct chunks a key's prompts reach.
class ReferenceIndex {
 public:
  ReferenceIndex() = default;
  ReferenceIndex(const std::vector<std::string>& documents, int chunk_words = 64);
  // The chunk most of the prompt's shingles come from; -1 when none (or the index is empty).
  int64_t locate(const std::string& text) const;
  int64_t locate_words(const std::vector<std::string>& words) const;  // the same, from prompt_words()
  int64_t chunks() const { return chunks_; }
  bool empty() const { return chunks_ == 0; }

 private:
  std::unordered_map<uint64_t, int32_t> shingle_chunk_;  // a shingle seen in two chunks keeps the first
  int64_t chunks_ = 0;
};

}  // namespace retort
