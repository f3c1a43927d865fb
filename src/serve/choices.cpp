// A request's choices as tokens arrive (choices.h): tokens, logprobs, stop strings, stream pieces.
#include "serve/choices.h"

#include <torch/torch.h>

#include <algorithm>

#include "retort/tokenizer.h"

namespace retort::serve {

namespace {

// The end of the longest prefix of s[begin, end) that does not split a UTF-8 character.
size_t utf8_safe_end(const std::string& s, size_t begin, size_t end) {
  // step back over at most 3 continuation bytes to the lead byte of the last character
  size_t lead = end;
  for (int back = 0; back < 4 && lead > begin; ++back) {
    --lead;
    unsigned char c = s[lead];
    if ((c & 0xC0) != 0x80) {
      size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
      return lead + need <= end ? end : lead;
    }
  }
  return end;
}

}  // namespace

std::vector<std::pair<int32_t, float>> top_of(const torch::Tensor& row, int64_t k) {
  std::vector<std::pair<int32_t, float>> out;
  if (k <= 0) return out;
  auto [v, i] = row.topk(std::min<int64_t>(k, row.size(0)));
  auto va = v.accessor<float, 1>();
  auto ia = i.accessor<int64_t, 1>();
  for (int64_t j = 0; j < v.size(0); ++j) out.emplace_back(int32_t(ia[j]), va[j]);
  return out;
}

ChoiceWriter::ChoiceWriter(const ServedModel& m, const GenerationRequest& r, GenerationResult& res)
    : m_(m), r_(r), res_(res), finished_(size_t(r.n), false), emitted_(size_t(r.n), 0) {
  for (const auto& s : r.stop) longest_stop_ = std::max(longest_stop_, s.size());
  res_.choices.resize(size_t(r.n));
}

bool ChoiceWriter::consume(const torch::Tensor& step_logits, const torch::Tensor& next, std::vector<StreamPiece>* pieces) {
  const bool want_lp = r_.logprobs >= 0;
  torch::Tensor lsm;
  if (want_lp) lsm = torch::log_softmax(step_logits.to(torch::kCPU, torch::kFloat32), -1);
  torch::Tensor ids = next.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* id_of = ids.data_ptr<int64_t>();
  bool all_done = true;
  for (int64_t c = 0; c < r_.n; ++c) {
    if (finished_[size_t(c)]) continue;
    GeneratedChoice& ch = res_.choices[size_t(c)];
    const int32_t id = int32_t(id_of[c]);
    ++res_.completion_tokens;
    const size_t token_start = ch.text.size();
    ch.ids.push_back(id);
    ch.text += m_.strings->bytes(id);
    StreamPiece piece;
    piece.choice = c;
    piece.with_logprobs = want_lp;
    if (want_lp) {
      TokenLogprob e{id, lsm[c][id].item<float>(), top_of(lsm[c], r_.logprobs)};
      bool listed = false;
      for (const auto& [tid, lp] : e.top) listed |= tid == id;
      if (!listed) e.top.emplace_back(id, e.logprob);  // as OpenAI: the sampled token is always listed
      ch.logprobs.push_back(e);
      piece.logprobs.push_back(e);
    }
    // a stop string ends the choice; the text (and the tokens) stop before it
    size_t from = token_start >= longest_stop_ ? token_start - longest_stop_ + 1 : 0;
    size_t cut = std::string::npos;
    for (const auto& s : r_.stop) {
      size_t at = ch.text.find(s, from);
      if (at != std::string::npos) cut = std::min(cut, at);
    }
    if (cut != std::string::npos) {
      finished_[size_t(c)] = true;
      ch.finish_reason = "stop";
      ch.text.resize(cut);
      size_t bytes = 0, keep = 0;
      while (keep < ch.ids.size() && bytes < cut) bytes += m_.strings->bytes(ch.ids[keep++]).size();
      ch.ids.resize(keep);
      if (want_lp) ch.logprobs.resize(std::min(ch.logprobs.size(), keep));
    } else if (int64_t(ch.ids.size()) >= r_.max_tokens) {
      finished_[size_t(c)] = true;
    }
    if (pieces) {
      // hold back what could still become a stop string, and half a UTF-8 character
      size_t& emitted = emitted_[size_t(c)];
      const size_t hold = std::min(ch.text.size(), longest_stop_ ? longest_stop_ - 1 : 0);
      size_t end = finished_[size_t(c)] ? ch.text.size()
                                        : utf8_safe_end(ch.text, emitted, std::max(emitted, ch.text.size() - hold));
      piece.text = ch.text.substr(emitted, end - emitted);
      emitted = end;
      pieces->push_back(std::move(piece));
    }
    all_done &= finished_[size_t(c)];
  }
  return !all_done;
}

bool deliver(const std::vector<StreamPiece>& pieces, const TokenSink& sink) {
  for (const StreamPiece& p : pieces)
    if (!sink(p.choice, p.text, p.with_logprobs ? &p.logprobs : nullptr)) return false;
  return true;
}

}  // namespace retort::serve
