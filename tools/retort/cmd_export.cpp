// `retort export`: a trained model in a format other runtimes load (src/formats/).
#include <cstdio>

#include "common.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/load_model.h"

namespace retort::cli {

void register_export(CLI::App& app) {
  struct Args {
    std::string model, format, out, dtype = "f32";
    int64_t opset = 17;
  };
  static Args a;
  auto* cmd = app.add_subcommand(
      "export",
      "Write a trained model in a format other runtimes load:\n"
      "  safetensors  a folder: model.safetensors + config.json (+ tokenizer). gpt models use the\n"
      "               Hugging Face Llama names and config (LlamaForCausalLM); mlp/cnn their own.\n"
      "  gguf         one file for llama.cpp (architecture llama, tokenizer inside); gpt only.\n"
      "  onnx         one file for ONNX Runtime (input images (N,C,H,W), output logits); mlp/cnn only.\n"
      "What safetensors and gguf wrote loads back: retort eval/generate --model OUT.\n"
      "Examples: retort export runs/demo/students/distilled --format onnx --out student.onnx\n"
      "          retort export runs/demo-lm/students/distilled --format gguf --out student.gguf --dtype f16\n"
      "          retort export runs/demo-lm/students/distilled --format safetensors --out student/");
  cmd->add_option("model", a.model, "run folder or model folder to export")->required();
  cmd->add_option("--format", a.format, "safetensors | gguf | onnx")
      ->required()
      ->check(CLI::IsMember(export_format_names()));
  cmd->add_option("--out", a.out, "where to write: a folder (safetensors) or a file")->required();
  cmd->add_option("--dtype", a.dtype, "tensor type: f32 or f16 (safetensors, gguf)")
      ->check(CLI::IsMember({"f32", "f16"}));
  cmd->add_option("--opset", a.opset, "ONNX opset version")->check(CLI::Range(int64_t{13}, int64_t{21}));
  cmd->callback([] {
    LoadedModel m = load_model(a.model);
    ExportOptions o;
    o.dtype = a.dtype;
    o.opset = a.opset;
    ExportResult r = export_model(m, a.format, a.out, o);
    std::printf("%s\n", r.summary.c_str());
  });
}

}  // namespace retort::cli
