// What the sources of local models (folder, model_file, torchscript) share: an OpenedTeacher
// around a loaded model, its signals and data kinds read from what the model is.
#pragma once
#include "retort/teacher_source.h"

namespace retort {

// gpt (or any model with a tokenizer): a language model (dense, top-k, text); mlp / cnn: a
// classifier (dense); a TorchScript module without a tokenizer beside it: either, probed when used.
OpenedTeacher local_teacher(const std::string& source, const std::string& kind,
                            const std::string& location, LoadedModel model);

}  // namespace retort
