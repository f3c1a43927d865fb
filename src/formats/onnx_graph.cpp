// The ONNX graph of an mlp or cnn student: each torch layer becomes the ONNX operator that
// computes the same thing in eval mode; weights become initializers under their torch names.
#include "onnx_graph.h"

#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include <map>

#include "retort/error.h"

namespace retort {

namespace {

// The order of the top-level children (and of the flatten between them) in each model's
// forward(): MlpImpl::forward flattens first; CnnImpl::forward flattens between the conv
// features and the dense classifier. kFlatten marks the flatten.
constexpr const char* kFlatten = "(flatten)";
const std::map<std::string, std::vector<std::string>>& classifier_layouts() {
  static const std::map<std::string, std::vector<std::string>> layouts = {
      {"mlp", {kFlatten, "body", "head"}},
      {"cnn", {"features", kFlatten, "classifier", "head"}},
  };
  return layouts;
}

std::vector<int64_t> ints(const torch::ExpandingArray<2>& a) { return {a->begin(), a->end()}; }

// Appends nodes one after another: each takes the previous node's output (the current value).
class GraphWriter {
 public:
  GraphWriter(onnx::GraphProto& graph, std::string input)
      : graph_(graph), value_(std::move(input)) {}

  // A node `op`(current value, extra inputs...) named `name`; its output becomes the current value.
  onnx::NodeProto& node(const std::string& op, const std::string& name,
                        const std::vector<std::string>& extra = {}) {
    onnx::NodeProto& n = *graph_.add_node();
    n.set_op_type(op);
    n.set_name(name);
    n.add_input(value_);
    for (const auto& e : extra) n.add_input(e);
    n.add_output(name);
    value_ = name;
    return n;
  }

  // `t` as a float32 initializer called `name`; returns the name.
  std::string weight(const std::string& name, const torch::Tensor& t) { return add_initializer(graph_, name, t); }

  // One layer, or a Sequential's layers in order; `path` is its name in the model ("features.0").
  void layer(const std::string& path, const torch::nn::Module& m) {
    if (const auto* seq = m.as<torch::nn::Sequential>()) {
      for (const auto& child : seq->named_children())
        layer(path + "." + child.key(), *child.value());
    } else if (const auto* linear = m.as<torch::nn::Linear>()) {
      std::vector<std::string> in = {weight(path + ".weight", linear->weight)};
      if (linear->bias.defined()) in.push_back(weight(path + ".bias", linear->bias));
      add_int(node("Gemm", path, in), "transB", 1);  // x W^T + b, as torch's linear
    } else if (const auto* conv = m.as<torch::nn::Conv2d>()) {
      conv2d(path, *conv);
    } else if (const auto* bn = m.as<torch::nn::BatchNorm2d>()) {
      if (!bn->options.affine() || !bn->options.track_running_stats())
        fail("onnx export: batch norm '", path, "' needs affine weights and running statistics");
      onnx::NodeProto& n =
          node("BatchNormalization", path,
               {weight(path + ".weight", bn->weight), weight(path + ".bias", bn->bias),
                weight(path + ".running_mean", bn->running_mean),
                weight(path + ".running_var", bn->running_var)});
      add_float(n, "epsilon", static_cast<float>(bn->options.eps()));
    } else if (m.as<torch::nn::ReLU>()) {
      node("Relu", path);
    } else if (const auto* pool = m.as<torch::nn::MaxPool2d>()) {
      const auto& o = pool->options;
      std::vector<int64_t> pad = ints(o.padding());
      onnx::NodeProto& n = node("MaxPool", path);
      add_ints(n, "kernel_shape", ints(o.kernel_size()));
      add_ints(n, "strides", ints(o.stride()));
      add_ints(n, "pads", {pad[0], pad[1], pad[0], pad[1]});  // begin (H, W), end (H, W)
      add_ints(n, "dilations", ints(o.dilation()));
      add_int(n, "ceil_mode", o.ceil_mode() ? 1 : 0);
    } else if (!m.as<torch::nn::Dropout>()) {  // dropout is the identity at inference
      fail("onnx export: layer '", path, "' (", m.name(), ") has no ONNX mapping");
    }
  }

  // (N, ...) -> (N, rest), as x.flatten(1).
  void flatten() { add_int(node("Flatten", "flatten"), "axis", 1); }

 private:
  void conv2d(const std::string& path, const torch::nn::Conv2dImpl& conv) {
    const auto& o = conv.options;
    const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
    if (!pad || !c10::get_if<torch::enumtype::kZeros>(&o.padding_mode()) || o.transposed())
      fail("onnx export: conv '", path, "' must be a plain convolution with explicit zero padding");
    std::vector<std::string> in = {weight(path + ".weight", conv.weight)};
    if (conv.bias.defined()) in.push_back(weight(path + ".bias", conv.bias));
    std::vector<int64_t> p = ints(*pad);
    onnx::NodeProto& n = node("Conv", path, in);
    add_ints(n, "kernel_shape", ints(o.kernel_size()));
    add_ints(n, "strides", ints(o.stride()));
    add_ints(n, "pads", {p[0], p[1], p[0], p[1]});  // begin (H, W), end (H, W)
    add_ints(n, "dilations", ints(o.dilation()));
    add_int(n, "group", o.groups());
  }

  static void add_int(onnx::NodeProto& n, const char* name, int64_t v) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(v);
  }
  static void add_ints(onnx::NodeProto& n, const char* name, const std::vector<int64_t>& v) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a.add_ints(x);
  }
  static void add_float(onnx::NodeProto& n, const char* name, float v) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(v);
  }

  onnx::GraphProto& graph_;
  std::string value_;  // name of the value the next node reads
};

// A float32 tensor value with a symbolic batch dimension: (batch, dims...).
void add_value_info(onnx::ValueInfoProto& v, const std::string& name,
                    const std::vector<int64_t>& dims) {
  v.set_name(name);
  onnx::TypeProto::Tensor& t = *v.mutable_type()->mutable_tensor_type();
  t.set_elem_type(onnx::TensorProto::FLOAT);
  t.mutable_shape()->add_dim()->set_dim_param("batch");
  for (int64_t d : dims) t.mutable_shape()->add_dim()->set_dim_value(d);
}

int64_t image_option(const LoadedModel& model, const char* key) {
  const auto& o = model.spec.options;
  if (!o.contains(key) || !o.at(key).is_number_integer())
    fail("onnx export: the ", model.spec.name, " model's options lack an integer '", key,
         "' (the input shape): ", o.dump());
  return o.at(key).get<int64_t>();
}

}  // namespace

std::string add_initializer(onnx::GraphProto& graph, const std::string& name, const torch::Tensor& t) {
  const bool integer = t.scalar_type() == torch::kInt64;
  torch::Tensor w = t.detach().to(torch::kCPU, integer ? torch::kInt64 : torch::kFloat32).contiguous();
  onnx::TensorProto& init = *graph.add_initializer();
  init.set_name(name);
  init.set_data_type(integer ? onnx::TensorProto::INT64 : onnx::TensorProto::FLOAT);
  for (int64_t d : w.sizes()) init.add_dims(d);
  // raw_data is little-endian, as x86 and ARM hosts store numbers.
  init.set_raw_data(w.data_ptr(), static_cast<size_t>(w.numel()) * w.element_size());
  return name;
}

std::vector<std::string> onnx_classifier_names() {
  std::vector<std::string> out;
  for (const auto& [name, _] : classifier_layouts()) out.push_back(name);
  out.push_back("tree");  // not a chain of layers: build_tree_graph (onnx_tree.cpp)
  return out;
}

void build_classifier_graph(const LoadedModel& model, onnx::GraphProto& graph) {
  if (model.spec.name == "tree") {
    const int64_t classes = build_tree_graph(model, graph);
    graph.set_name("retort_tree");
    add_value_info(*graph.add_input(), "images",
                   {image_option(model, "in_channels"), image_option(model, "height"),
                    image_option(model, "width")});
    add_value_info(*graph.add_output(), "logits", {classes});
    return;
  }
  const std::vector<std::string>& layout = classifier_layouts().at(model.spec.name);
  auto children = model.model->named_children();
  if (children.size() + 1 != layout.size())
    fail("onnx export: the ", model.spec.name, " model has ", children.size(),
         " top-level layers, its ONNX layout (src/formats/onnx_graph.cpp) names ",
         layout.size() - 1);

  GraphWriter g(graph, "images");
  for (const auto& step : layout) {
    if (step == kFlatten) {
      g.flatten();
      continue;
    }
    const auto* child = children.find(step);
    if (!child) fail("onnx export: the ", model.spec.name, " model has no layer '", step, "'");
    g.layer(step, **child);
  }
  // The head is a Linear, so the last node is its Gemm: it writes the graph's output.
  graph.mutable_node(graph.node_size() - 1)->set_output(0, "logits");

  const auto* head = children["head"]->as<torch::nn::Linear>();
  graph.set_name("retort_" + model.spec.name);
  add_value_info(*graph.add_input(), "images",
                 {image_option(model, "in_channels"), image_option(model, "height"),
                  image_option(model, "width")});
  add_value_info(*graph.add_output(), "logits", {head->options.out_features()});
}

}  // namespace retort
