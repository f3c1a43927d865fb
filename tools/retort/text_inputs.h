// Texts a command reads from files or stdin (`retort guard detect`, `guard verify --texts`): a
// whole file, or one text per line of JSONL.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace retort::cli {

struct Text {
  std::string source;  // the file's name, or "stdin"
  int64_t line = 0;    // 0: the whole input
  std::string text;
};

// One text, or one per line of JSONL ({"text": ...} or a JSON string); "-" reads stdin. A missing
// file, NUL bytes or a JSONL line without a "text" string -> Error naming the file and line.
std::vector<Text> read_texts(const std::string& input);

}  // namespace retort::cli
