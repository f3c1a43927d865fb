// The text simulated clients send: held-out verses of the KJV for people (the teacher never
// trained on them), and the training split as token windows for harvesters, tokenized with the
// served model's own tokenizer as `retort distill --teacher openai:` would (text.tokenizer = auto).
#include <torch/torch.h>

#include "detect/simulate_parts.h"
#include "retort/error.h"
#include "retort/model.h"
#include "retort/options.h"
#include "retort/text_data.h"

namespace retort::sim {

Material load_material(const std::filesystem::path& model, int64_t seq_len) {
  Material m;
  LoadedModel served = load_model_folder(model);
  if (!served.tokenizer)
    fail("the simulation serves a language model; ", model.string(), " is a ", served.spec.name,
         " without a tokenizer (a classifier?)");
  m.tokenizer = served.tokenizer;
  m.context = served.spec.options.value("max_seq_len", int64_t{4096});
  if (seq_len > m.context)
    fail("sim.seq_len = ", seq_len, " is longer than the served model's context (", m.context, " tokens in ",
         model.string(), ")");
  m.seq_len = seq_len;
  TextOptions text;
  text.corpus = "kjv";
  text.tokenizer = "auto";
  text.seq_len = seq_len;
  text.validation_fraction = 0.05;  // the split every retort run of the KJV uses (text.validation_fraction)
  TextData data = load_text_data(text, m.tokenizer);
  m.train = data.train;
  torch::Tensor v = data.validation.tokens.contiguous();
  const std::string held_out =
      m.tokenizer->decode(std::vector<int32_t>(v.data_ptr<int32_t>(), v.data_ptr<int32_t>() + v.numel()));
  size_t pos = 0;
  while (pos < held_out.size()) {
    size_t end = held_out.find('\n', pos);
    if (end == std::string::npos) end = held_out.size();
    std::string line = held_out.substr(pos, end - pos);
    if (line.size() >= 24) m.verses.push_back(line);  // headings ("Psalms 12") and blanks are not prompts
    pos = end + 1;
  }
  if (m.verses.size() < 10) fail("the held-out KJV text gave only ", m.verses.size(), " verses");
  return m;
}

}  // namespace retort::sim
