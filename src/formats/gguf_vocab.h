// retort's tokenizers as the vocabulary llama.cpp reads from GGUF metadata (tokenizer.ggml.*).
#pragma once
#include "gguf_io.h"
#include "retort/tokenizer.h"

namespace retort::gguf {

// Writes tokenizer.ggml.* so that llama.cpp tokenizes and detokenizes as `tokenizer` does, with
// no space prefix and no BOS/EOS added:
//   SentencePiece BPE: model "llama" (merges by score, byte fallback) with the ModelProto's
//     pieces, scores and types: the same ids as retort.
//   SentencePiece unigram: model "t5" (llama.cpp's unigram): the same ids for text made of
//     characters the tokenizer was trained on; llama.cpp has no byte fallback for unigram, so it
//     reads other characters as <unk> where retort uses byte pieces.
//   Byte: model "llama" with the 256 byte pieces "<0x00>".."<0xFF>", the space as the normal
//     piece "▁" (llama.cpp writes every space as "▁" before it looks tokens up).
// In all of them llama.cpp also reads a literal "▁" (U+2581) in text as a space.
void add_llama_vocab(Writer& out, const Tokenizer& tokenizer);

}  // namespace retort::gguf
