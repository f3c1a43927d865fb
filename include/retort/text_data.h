// Text data for language-model runs from the text options: the corpus split, tokenized; the gpt
// a model section describes; the vocabulary check between a teacher and a student.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "retort/model.h"
#include "retort/options.h"
#include "retort/text.h"
#include "retort/tokenizer.h"

namespace retort {

// text.corpus split by document (text.validation_fraction, run.seed-independent: the split
// is seeded by a constant so every run of a corpus holds out the same text), tokenized.
// `tokenizer`: used as given when set (distill: the teacher's). Otherwise per text.tokenizer:
// byte, or SentencePiece trained on the training documents and kept in `tokenizer_dir`
// (reused when that folder holds one trained from the same text and options).
TextData load_text_data(const TextOptions& text, std::shared_ptr<Tokenizer> tokenizer = nullptr,
                        const std::filesystem::path& tokenizer_dir = {});

// A gpt ModelSpec from `model` (o.model, o.teacher.model); another architecture -> Error.
ModelSpec gpt_spec_from(const ModelOptions& model, int64_t vocab_size, int64_t seq_len);

// Fails unless the teacher and the student share a vocabulary (sizes named).
void check_same_vocabulary(int64_t teacher_vocab, int64_t student_vocab, const std::string& why);

}  // namespace retort
