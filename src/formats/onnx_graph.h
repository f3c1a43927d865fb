// The ONNX graph of a classifier student (mlp, cnn): what its forward() computes in eval mode,
// layer by layer. Not the file around it (opset, metadata, writing): that is onnx.cpp.
#pragma once
#include <string>
#include <vector>

#include "retort/model.h"

namespace onnx {
class GraphProto;
}

namespace retort {

// The model names build_classifier_graph takes.
std::vector<std::string> onnx_classifier_names();  // mlp, cnn

// Fills `graph` with input "images" (batch, C, H, W) float32 (C, H, W from the spec's
// in_channels, height, width), output "logits" (batch, classes), one node per layer and every
// weight as a float32 initializer named like the module's parameter ("features.0.weight").
// Dropout is left out (identity at inference); batch norm uses its running statistics.
// A layer or layer option the graph cannot reproduce -> Error naming the layer.
void build_classifier_graph(const LoadedModel& model, onnx::GraphProto& graph);

}  // namespace retort
