// export_model: the one entry point of `retort export`, by format name.
#include <torch/torch.h>

#include "retort/error.h"
#include "retort/formats.h"

namespace retort {

std::vector<std::string> export_format_names() { return {"safetensors", "gguf", "onnx"}; }

ExportResult export_model(const LoadedModel& model, const std::string& format, const std::filesystem::path& out,
                          const ExportOptions& options) {
  if (options.dtype != "f32" && options.dtype != "f16")
    fail("export dtype must be f32 or f16, got \"", options.dtype, "\"");
  if (format == "safetensors") return export_safetensors(model, out, options);
  if (format == "gguf") return export_gguf(model, out, options);
  if (format == "onnx") return export_onnx(model, out, options);
  fail("unknown export format \"", format, "\"; known: safetensors (folder), gguf (file), onnx (file)");
}

}  // namespace retort
