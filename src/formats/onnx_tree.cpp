// The ONNX graph of a soft decision tree student (src/models/tree.h): the same products and
// mixture TreeImpl::forward computes, in the same order, with opset 13+ operators only.
#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include "models/tree.h"
#include "onnx_graph.h"
#include "retort/error.h"

namespace retort {

namespace {

// A node `op`(inputs...) whose one output is called `name`.
onnx::NodeProto& add_node(onnx::GraphProto& graph, const std::string& op, const std::string& name,
                          const std::vector<std::string>& inputs) {
  onnx::NodeProto& n = *graph.add_node();
  n.set_op_type(op);
  n.set_name(name);
  for (const auto& in : inputs) n.add_input(in);
  n.add_output(name);
  return n;
}

void add_int(onnx::NodeProto& n, const char* name, int64_t v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(v);
}

}  // namespace

int64_t build_tree_graph(const LoadedModel& model, onnx::GraphProto& graph) {
  const auto* tree = dynamic_cast<const TreeImpl*>(model.model.get());
  if (!tree) fail("onnx export: the model named 'tree' is not a soft decision tree (", model.model->name(), ")");
  const TreeOptions& o = tree->options();

  // right = sigmoid(beta * (x W^T + b)): (batch, 2^depth - 1)
  add_int(add_node(graph, "Flatten", "flatten", {"images"}), "axis", 1);
  onnx::NodeProto& gemm = add_node(graph, "Gemm", "inner", {"flatten", add_initializer(graph, "inner.weight", tree->inner->weight),
                                                             add_initializer(graph, "inner.bias", tree->inner->bias)});
  add_int(gemm, "transB", 1);
  add_node(graph, "Mul", "inner.scaled", {"inner", add_initializer(graph, "beta", torch::tensor(float(o.beta())))});
  add_node(graph, "Sigmoid", "right", {"inner.scaled"});

  // Path probabilities (batch, 2^depth): per level, each leaf's ancestor's p turned into the
  // branch taken (p * sign + offset), multiplied into the leaf's product.
  std::string leaf;
  const std::vector<TreeLevel> levels = tree_levels(o.depth());
  for (size_t k = 0; k < levels.size(); ++k) {
    const std::string at = "level" + std::to_string(k);
    add_int(add_node(graph, "Gather", at + ".p", {"right", add_initializer(graph, at + ".node", levels[k].node)}),
            "axis", 1);
    add_node(graph, "Mul", at + ".signed", {at + ".p", add_initializer(graph, at + ".sign", levels[k].sign)});
    add_node(graph, "Add", at + ".branch", {at + ".signed", add_initializer(graph, at + ".offset", levels[k].offset)});
    if (leaf.empty()) {
      leaf = at + ".branch";
    } else {
      add_node(graph, "Mul", at + ".path", {leaf, at + ".branch"});
      leaf = at + ".path";
    }
  }

  // logits = log(mu Q), Q = softmax(leaf_logits) over classes.
  add_int(add_node(graph, "Softmax", "leaf_distributions", {add_initializer(graph, "leaf_logits", tree->leaf_logits)}),
          "axis", 1);
  add_node(graph, "MatMul", "mixture", {leaf, "leaf_distributions"});
  add_node(graph, "Log", "logits", {"mixture"});
  return tree->leaf_logits.size(1);
}

}  // namespace retort
