// What the tokenizer kinds behind retort/tokenizer.h share: tokenizer.cpp holds the byte tokenizer
// and the tokenizer files, sentencepiece_tokenizer.cpp the SentencePiece tokenizer and its
// training. Private to src/data.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "retort/tokenizer.h"

namespace retort {

// 16 hex digits over a tokenizer's kind and what defines it (the SentencePiece ModelProto).
std::string tokenizer_fingerprint(std::string_view kind, std::string_view payload);
// Ids out of [0, vocab) -> Error naming the id and its position.
void check_token_ids(const std::vector<int32_t>& ids, int64_t vocab);
// tokenizer.json's text.
std::string tokenizer_json(const nlohmann::json& j);

// A SentencePiece tokenizer over `serialized`, a ModelProto as SentencePiece writes it; `origin`
// names it in errors (a corrupt model, one without byte pieces -> Error).
std::shared_ptr<Tokenizer> make_sentencepiece_tokenizer(std::string serialized,
                                                        std::string model_type,
                                                        const std::string& origin);

}  // namespace retort
