// export_onnx: a classifier student as one .onnx file for ONNX Runtime: the graph
// (onnx_graph.cpp), the opset and IR version, the input's preprocessing as metadata, and an
// atomic write. Protobuf classes from Debian's libonnx (the ones libtorch links).
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "onnx_graph.h"
#include "retort/error.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "retort/normalisation.h"

namespace retort {

namespace {

// The IR version released with each supported opset (onnx/helper.py VERSION_TABLE).
int64_t ir_version_for(int64_t opset) {
  static const std::map<int64_t, int64_t> ir = {{13, 7}, {14, 7}, {15, 8}, {16, 8}, {17, 8},
                                                {18, 8}, {19, 9}, {20, 9}, {21, 10}};
  auto it = ir.find(opset);
  if (it == ir.end()) fail("onnx export: opset must be 13 to 21, got ", opset);
  return it->second;
}

void add_metadata(onnx::ModelProto& m, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto& e = *m.add_metadata_props();
  e.set_key(key);
  e.set_value(value);
}

// Debian's onnx 1.12 checker knows IR versions up to 8 and opsets up to 17; newer files it
// would refuse for their version alone. Returns what the summary says about the check.
std::string check_with_onnx(const onnx::ModelProto& m, int64_t opset) {
  int64_t checker_opset =
      onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at("").second;
  if (m.ir_version() > onnx::IR_VERSION || opset > checker_opset)
    return cat("not checked (onnx's checker here knows opsets up to ", checker_opset, ")");
  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    fail("onnx export made a model onnx's checker refuses (a bug in retort): ", e.what());
  }
  return "passes onnx's checker";
}

}  // namespace

ExportResult export_onnx(const LoadedModel& model, const std::filesystem::path& file,
                         const ExportOptions& options) {
  const std::string& name = model.spec.name;
  std::vector<std::string> classifiers = onnx_classifier_names();
  if (std::find(classifiers.begin(), classifiers.end(), name) == classifiers.end()) {
    std::string why = name == "gpt" ? "gpt is a language model: use --format gguf or safetensors"
                                    : "got model '" + name + "'";
    std::string known;
    for (const auto& c : classifiers) known += (known.empty() ? "" : ", ") + c;
    fail("onnx export takes classifiers (", known, "); ", why);
  }
  if (options.dtype != "f32")
    fail("onnx export writes float32 weights only; --dtype ", options.dtype,
         " is for safetensors and gguf");

  onnx::ModelProto m;
  m.set_ir_version(ir_version_for(options.opset));
  onnx::OperatorSetIdProto& op = *m.add_opset_import();
  op.set_domain("");  // the default ai.onnx operators
  op.set_version(options.opset);
  m.set_producer_name("retort");
  m.set_doc_string(cat("retort ", name, " classifier; options ", model.spec.options.dump()));
  build_classifier_graph(model, *m.mutable_graph());

  InputNormalisation norm = input_normalisation(model.dir);
  // Shortest text that reads back as the same double: 0.286, not 0.28599999999999998.
  std::string mean = nlohmann::json(norm.mean).dump(), stddev = nlohmann::json(norm.std).dump();
  const auto& in = m.graph().input(0).type().tensor_type().shape();
  std::string input =
      cat("images (batch, ", in.dim(1).dim_value(), ", ", in.dim(2).dim_value(), ", ",
          in.dim(3).dim_value(), ") float32 = (pixel / 255 - ", mean, ") / ", stddev);
  add_metadata(m, "retort.model", name);
  add_metadata(m, "retort.options", model.spec.options.dump());
  add_metadata(m, "preprocessing", cat(input, ", pixel in 0..255; from ", norm.source));
  add_metadata(m, "normalize.mean", mean);
  add_metadata(m, "normalize.std", stddev);
  std::string checked = check_with_onnx(m, options.opset);

  atomic_write(file, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail("cannot write ", tmp);
    if (!m.SerializeToOstream(&out)) fail("onnx export: serialising the model to ", tmp, " failed");
    out.close();
    if (!out) fail("write failed for ", tmp);
  });

  ExportResult r;
  r.files = {file};
  r.bytes = static_cast<int64_t>(fs::file_size(file));
  r.summary = cat("wrote ", file.string(), " (", decimals(r.bytes / 1024.0, 1), " KiB): ", name,
                  ", opset ", options.opset, ", ", m.graph().node_size(), " nodes, ", checked,
                  "; input ", input, ", output logits (batch, ",
                  m.graph().output(0).type().tensor_type().shape().dim(1).dim_value(), ")");
  return r;
}

}  // namespace retort
