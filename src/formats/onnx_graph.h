// The ONNX graph of a classifier student (mlp, cnn): what its forward() computes in eval mode,
// layer by layer. Not the file around it (opset, metadata, writing): that is onnx.cpp.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "retort/model.h"

namespace onnx {
class GraphProto;
}

namespace retort {

// The model names build_classifier_graph takes.
std::vector<std::string> onnx_classifier_names();  // cnn, mlp, tree

// Fills `graph` with input "images" (batch, C, H, W) float32 (C, H, W from the spec's
// in_channels, height, width), output "logits" (batch, classes), one node per layer and every
// weight as a float32 initializer named like the module's parameter ("features.0.weight").
// Dropout is left out (identity at inference); batch norm uses its running statistics.
// A layer or layer option the graph cannot reproduce -> Error naming the layer.
// A tree's graph is not a chain of layers: build_tree_graph (onnx_tree.cpp) writes it.
void build_classifier_graph(const LoadedModel& model, onnx::GraphProto& graph);

// The nodes and initializers of a soft decision tree (src/models/tree.h) from "images" to
// "logits", as TreeImpl::forward computes them (opset 13+: Flatten, Gemm, Mul, Sigmoid, Gather,
// Add, Softmax, MatMul, Log). Returns the number of classes.
int64_t build_tree_graph(const LoadedModel& model, onnx::GraphProto& graph);

// `t` as an initializer called `name` (float32, or int64 for an int64 tensor); returns the name.
std::string add_initializer(onnx::GraphProto& graph, const std::string& name, const torch::Tensor& t);

}  // namespace retort
