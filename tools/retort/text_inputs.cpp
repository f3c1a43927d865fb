// Texts from files or stdin (text_inputs.h).
#include "text_inputs.h"

#include <filesystem>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "retort/error.h"
#include "retort/fs.h"

namespace retort::cli {

namespace fs = std::filesystem;

std::vector<Text> read_texts(const std::string& input) {
  std::string data;
  if (input == "-") {
    data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    if (!fs::is_regular_file(input)) fail("detect: no file '", input, "'");
    data = read_text(input);
  }
  const std::string name = input == "-" ? "stdin" : input;
  if (data.find('\0') != std::string::npos)
    fail("detect: ", name, " is not text (it holds NUL bytes); give text or JSONL with a \"text\" field per line");
  const bool jsonl = input.size() > 6 && input.substr(input.size() - 6) == ".jsonl";
  std::vector<Text> out;
  if (!jsonl && !(data.size() > 0 && data[0] == '{')) {
    out.push_back({name, 0, data});
    return out;
  }
  std::istringstream in(data);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_string()) {
      out.push_back({name, n, j.get<std::string>()});
    } else if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      out.push_back({name, n, j["text"].get<std::string>()});
    } else {
      fail("detect: ", name, " line ", n, " is not a JSON object with a \"text\" string (JSONL input)");
    }
  }
  return out;
}

}  // namespace retort::cli
