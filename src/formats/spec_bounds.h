// Model files hold a spec (name + options) that is built before any weight is read, and building
// allocates what the spec says. A spec is only a claim: one the file's weights cannot fill is
// refused before make_model runs. Private to src/formats (GGUF and safetensors imports).
#pragma once
#include <cstdint>
#include <string>

#include "retort/model.h"

namespace retort {

// Error "<where> describes ..." when `spec` (a gpt or mlp) has more weights than `weight_bytes`
// of 2-byte-or-wider floats can hold, or a gpt's max_seq_len above 2^20 positions (text.seq_len's
// bound; the RoPE table has max_seq_len rows). Invalid options -> Error naming `where` too.
// A cnn is not checked: its FLOPs grow with the image, not only with its weights.
void check_spec_fits(const ModelSpec& spec, uint64_t weight_bytes, const std::string& where);

}  // namespace retort
