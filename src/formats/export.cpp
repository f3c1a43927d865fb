// export_model: the one entry point of `retort export`, by format name.
#include <torch/torch.h>

#include "retort/error.h"
#include "retort/formats.h"

namespace retort {

namespace {

// The export formats: one row each. A new format is its export_<name> function and a row here
// (and a reader row in load_model.cpp if retort reads it back).
struct ExportFormat {
  const char* name;
  const char* makes;  // "folder" | "file"
  ExportResult (*write)(const LoadedModel&, const std::filesystem::path&, const ExportOptions&);
};
const ExportFormat kFormats[] = {
    {"safetensors", "folder", export_safetensors},
    {"gguf", "file", export_gguf},
    {"onnx", "file", export_onnx},
};

}  // namespace

std::vector<std::string> export_format_names() {
  std::vector<std::string> names;
  for (const ExportFormat& f : kFormats) names.push_back(f.name);
  return names;
}

ExportResult export_model(const LoadedModel& model, const std::string& format, const std::filesystem::path& out,
                          const ExportOptions& options) {
  if (options.dtype != "f32" && options.dtype != "f16")
    fail("export dtype must be f32 or f16, got \"", options.dtype, "\"");
  std::string known;
  for (const ExportFormat& f : kFormats) {
    if (format == f.name) return f.write(model, out, options);
    known += cat(known.empty() ? "" : ", ", f.name, " (", f.makes, ")");
  }
  fail("unknown export format \"", format, "\"; known: ", known);
}

}  // namespace retort
