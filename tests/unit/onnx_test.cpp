// ONNX export (src/formats/onnx*.cpp): the written file parsed back with onnx's own protobuf
// classes. That ONNX Runtime computes retort's logits from it is tested end to end by
// tests/e2e/export_onnx_test.sh (tests/clients/onnx_runtime_test.mjs).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <fstream>

#include "retort/config.h"
#include "retort/config_schema.h"
#include "retort/formats.h"
#include "retort/fs.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;
using retort::testing::TempDir;

namespace {

LoadedModel classifier(const std::string& name, nlohmann::json options, const fs::path& dir) {
  options.update({{"in_channels", 1}, {"height", 8}, {"width", 8}, {"num_classes", 4}});
  torch::manual_seed(5);
  LoadedModel m;
  m.spec = {name, options};
  m.model = make_model(m.spec);
  m.dir = dir;
  return m;
}

onnx::ModelProto read_onnx(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromIstream(&in)) << file;
  return m;
}

std::vector<std::string> op_types(const onnx::ModelProto& m) {
  std::vector<std::string> out;
  for (const auto& n : m.graph().node()) out.push_back(n.op_type());
  return out;
}

std::string metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& e : m.metadata_props())
    if (e.key() == key) return e.value();
  return "(missing " + key + ")";
}

// dim_param for a symbolic dimension, the number otherwise: {"batch", "1", "8", "8"}.
std::vector<std::string> dims(const onnx::ValueInfoProto& v) {
  std::vector<std::string> out;
  for (const auto& d : v.type().tensor_type().shape().dim())
    out.push_back(d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return out;
}

// Every parameter and running statistic is an initializer of the same name, shape and bytes,
// and nothing else is (num_batches_tracked is not part of the eval computation).
void expect_initializers_equal_module(const onnx::ModelProto& m, const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> want;
  for (const auto& p : module.named_parameters()) want[p.key()] = p.value();
  for (const auto& b : module.named_buffers())
    if (b.key().find("num_batches_tracked") == std::string::npos) want[b.key()] = b.value();
  EXPECT_EQ(m.graph().initializer_size(), static_cast<int>(want.size()));
  for (const auto& init : m.graph().initializer()) {
    auto it = want.find(init.name());
    ASSERT_NE(it, want.end()) << "initializer " << init.name() << " is no parameter of the module";
    EXPECT_EQ(init.data_type(), onnx::TensorProto::FLOAT) << init.name();
    std::vector<int64_t> shape(init.dims().begin(), init.dims().end());
    EXPECT_EQ(shape, it->second.sizes().vec()) << init.name();
    torch::Tensor w = it->second.contiguous();
    std::string bytes(static_cast<const char*>(w.data_ptr()), w.numel() * sizeof(float));
    EXPECT_TRUE(init.raw_data() == bytes) << init.name() << ": values differ";
  }
}

const onnx::AttributeProto& attribute(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a;
  throw std::runtime_error(n.name() + " has no attribute " + name);
}

std::vector<int64_t> attribute_ints(const onnx::NodeProto& n, const std::string& name) {
  const auto& ints = attribute(n, name).ints();
  return {ints.begin(), ints.end()};
}

}  // namespace

TEST(Onnx, MlpHasDynamicBatchOpset17AndEveryParameter) {
  TempDir tmp;
  LoadedModel m = classifier("mlp", {{"hidden", {16, 12}}, {"dropout", 0.1}}, tmp / "model");
  ExportResult r = export_onnx(m, tmp / "mlp.onnx", {});
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].string(), (tmp / "mlp.onnx").string());
  EXPECT_EQ(r.bytes, static_cast<int64_t>(fs::file_size(tmp / "mlp.onnx")));
  EXPECT_NE(r.summary.find("opset 17, 6 nodes"), std::string::npos) << r.summary;

  onnx::ModelProto p = read_onnx(tmp / "mlp.onnx");
  EXPECT_EQ(p.ir_version(), 8);
  ASSERT_EQ(p.opset_import_size(), 1);
  EXPECT_EQ(p.opset_import(0).domain(), "");
  EXPECT_EQ(p.opset_import(0).version(), 17);
  EXPECT_EQ(p.producer_name(), "retort");
  EXPECT_NE(p.doc_string().find("\"hidden\":[16,12]"), std::string::npos) << p.doc_string();
  ASSERT_EQ(p.graph().input_size(), 1);
  ASSERT_EQ(p.graph().output_size(), 1);
  EXPECT_EQ(p.graph().input(0).name(), "images");
  EXPECT_EQ(dims(p.graph().input(0)), (std::vector<std::string>{"batch", "1", "8", "8"}));
  EXPECT_EQ(p.graph().output(0).name(), "logits");
  EXPECT_EQ(dims(p.graph().output(0)), (std::vector<std::string>{"batch", "4"}));
  // Dropout is the identity at inference: no node for it.
  EXPECT_EQ(op_types(p),
            (std::vector<std::string>{"Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm"}));
  EXPECT_EQ(p.graph().node(5).output(0), "logits");
  expect_initializers_equal_module(p, *m.model);
  // No run config above the model folder: retort's default normalisation, said so.
  EXPECT_EQ(metadata(p, "normalize.mean"), "0.286");
  EXPECT_EQ(metadata(p, "normalize.std"), "0.353");
  EXPECT_NE(metadata(p, "preprocessing").find("(pixel / 255 - 0.286) / 0.353"), std::string::npos);
  EXPECT_NE(metadata(p, "preprocessing").find("defaults"), std::string::npos);
}

TEST(Onnx, CnnFollowsForwardWithRunningStatistics) {
  TempDir tmp;
  LoadedModel m = classifier("cnn", {{"channels", {4, 6}}, {"hidden", {8}}}, tmp / "model");
  // Running statistics away from their initial 0 and 1, so that writing them is seen.
  m.model->train();
  m.model->forward(torch::randn({16, 1, 8, 8}) * 3 + 1);
  ExportResult r = export_onnx(m, tmp / "cnn.onnx", {});
  EXPECT_NE(r.summary.find("passes onnx's checker"), std::string::npos) << r.summary;

  onnx::ModelProto p = read_onnx(tmp / "cnn.onnx");
  EXPECT_EQ(op_types(p), (std::vector<std::string>{"Conv", "BatchNormalization", "Relu", "MaxPool",
                                                   "Conv", "BatchNormalization", "Relu", "MaxPool",
                                                   "Flatten", "Gemm", "Relu", "Gemm"}));
  expect_initializers_equal_module(p, *m.model);
  const onnx::NodeProto& conv = p.graph().node(0);
  EXPECT_EQ(conv.input(1), "features.0.weight");
  EXPECT_EQ(conv.input(2), "features.0.bias");
  EXPECT_EQ(attribute_ints(conv, "kernel_shape"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(attribute_ints(conv, "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(attribute(p.graph().node(1), "epsilon").f(), 1e-5f);
  const onnx::NodeProto& pool = p.graph().node(3);
  EXPECT_EQ(attribute_ints(pool, "kernel_shape"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(attribute_ints(pool, "strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(attribute(pool, "ceil_mode").i(), 0);
  EXPECT_EQ(dims(p.graph().output(0)), (std::vector<std::string>{"batch", "4"}));
}

TEST(Onnx, TreeIsFiltersPathProductsAndTheLeafMixture) {
  TempDir tmp;
  LoadedModel m = classifier("tree", {{"depth", 2}, {"beta", 1.5}}, tmp / "model");
  ExportResult r = export_onnx(m, tmp / "tree.onnx", {});
  EXPECT_NE(r.summary.find("passes onnx's checker"), std::string::npos) << r.summary;
  onnx::ModelProto p = read_onnx(tmp / "tree.onnx");
  // sigmoid(beta (x W^T + b)); per level: gather each leaf's ancestor, p * sign + offset, the
  // product along the path; then log(mu softmax(leaf_logits)).
  EXPECT_EQ(op_types(p), (std::vector<std::string>{"Flatten", "Gemm", "Mul", "Sigmoid", "Gather", "Mul", "Add",
                                                   "Gather", "Mul", "Add", "Mul", "Softmax", "MatMul", "Log"}));
  EXPECT_EQ(p.graph().node(p.graph().node_size() - 1).output(0), "logits");
  EXPECT_EQ(dims(p.graph().input(0)), (std::vector<std::string>{"batch", "1", "8", "8"}));
  EXPECT_EQ(dims(p.graph().output(0)), (std::vector<std::string>{"batch", "4"}));
  // Every parameter under its torch name with its bytes; the rest are the routing constants.
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& init : p.graph().initializer()) inits[init.name()] = &init;
  for (const auto& param : m.model->named_parameters()) {
    ASSERT_TRUE(inits.count(param.key())) << param.key();
    torch::Tensor w = param.value().contiguous();
    EXPECT_TRUE(inits[param.key()]->raw_data() ==
                std::string(static_cast<const char*>(w.data_ptr()), w.numel() * sizeof(float)))
        << param.key();
  }
  ASSERT_TRUE(inits.count("level1.node"));
  EXPECT_EQ(inits["level1.node"]->data_type(), onnx::TensorProto::INT64);
  std::vector<int64_t> node(4);
  std::memcpy(node.data(), inits["level1.node"]->raw_data().data(), 4 * sizeof(int64_t));
  EXPECT_EQ(node, (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(attribute(p.graph().node(4), "axis").i(), 1);
}

TEST(Onnx, OpsetSetsTheIrVersion) {
  TempDir tmp;
  LoadedModel m = classifier("mlp", {{"hidden", {4}}}, tmp / "model");
  for (auto [opset, ir] : std::vector<std::pair<int, int>>{{13, 7}, {17, 8}, {19, 9}, {21, 10}}) {
    ExportOptions o;
    o.opset = opset;
    ExportResult r = export_onnx(m, tmp / "m.onnx", o);
    onnx::ModelProto p = read_onnx(tmp / "m.onnx");
    EXPECT_EQ(p.opset_import(0).version(), opset);
    EXPECT_EQ(p.ir_version(), ir) << "opset " << opset;
    if (opset > 17) EXPECT_NE(r.summary.find("not checked"), std::string::npos) << r.summary;
  }
  ExportOptions old;
  old.opset = 12;
  EXPECT_EQ(error_of([&] { export_onnx(m, tmp / "m.onnx", old); }),
            "onnx export: opset must be 13 to 21, got 12");
}

TEST(Onnx, PreprocessingComesFromTheRunConfig) {
  TempDir tmp;
  Config c = Config::defaults(retort_schema());
  c.set("data.mean", "0.5");
  c.set("data.std", "0.25");
  atomic_write_text(tmp / "run" / "config.toml", c.to_toml());
  LoadedModel m = classifier("mlp", {{"hidden", {4}}}, tmp / "run" / "model");
  ExportResult r = export_onnx(m, tmp / "m.onnx", {});
  EXPECT_NE(r.summary.find("(pixel / 255 - 0.5) / 0.25"), std::string::npos) << r.summary;
  onnx::ModelProto p = read_onnx(tmp / "m.onnx");
  EXPECT_EQ(metadata(p, "normalize.mean"), "0.5");
  EXPECT_EQ(metadata(p, "normalize.std"), "0.25");
  EXPECT_NE(metadata(p, "preprocessing").find((tmp / "run" / "config.toml").string()),
            std::string::npos);
}

TEST(Onnx, RefusesLanguageModelsAndHalfPrecision) {
  TempDir tmp;
  LoadedModel gpt;
  gpt.spec = {
      "gpt",
      {{"vocab_size", 40}, {"d_model", 32}, {"n_layers", 1}, {"n_heads", 4}, {"max_seq_len", 16}}};
  gpt.model = make_model(gpt.spec);
  EXPECT_EQ(error_of([&] { export_model(gpt, "onnx", tmp / "gpt.onnx"); }),
            "onnx export takes classifiers (cnn, mlp, tree); gpt is a language model: use --format gguf "
            "or safetensors");
  LoadedModel mlp = classifier("mlp", {{"hidden", {4}}}, tmp / "model");
  ExportOptions f16;
  f16.dtype = "f16";
  EXPECT_EQ(error_of([&] { export_onnx(mlp, tmp / "m.onnx", f16); }),
            "onnx export writes float32 weights only; --dtype f16 is for safetensors and gguf");
  EXPECT_FALSE(fs::exists(tmp / "gpt.onnx"));
  EXPECT_FALSE(fs::exists(tmp / "m.onnx"));
}

TEST(Onnx, UnwritablePathIsAnErrorAndLeavesNothing) {
  TempDir tmp;
  LoadedModel m = classifier("mlp", {{"hidden", {4}}}, tmp / "model");
  atomic_write_text(tmp / "file", "not a folder\n");
  std::string e = error_of([&] { export_onnx(m, tmp / "file" / "m.onnx", {}); });
  EXPECT_NE(e.find("cannot create folder"), std::string::npos) << e;
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(tmp.path()))
    left.push_back(entry.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"file"});
}
