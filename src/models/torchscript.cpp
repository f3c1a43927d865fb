// TorchScript modules as retort models: teachers trained in PyTorch, saved with
// torch.jit.trace(...).save() or torch.jit.script(...).save(), loaded with torch::jit::load.
#include <torch/script.h>
#include <torch/torch.h>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/model.h"
#include "retort/tokenizer.h"

namespace fs = std::filesystem;

namespace retort {

namespace {

// The logits in what a module returned: a tensor, the first tensor of a tuple or list, or the
// "logits" entry of a dict (the only tensor when there is no such key).
torch::Tensor logits_in(const c10::IValue& out, const std::string& who) {
  if (out.isTensor()) return out.toTensor();
  if (out.isTuple() || out.isList()) {
    std::vector<c10::IValue> items =
        out.isTuple() ? out.toTupleRef().elements().vec() : out.toListRef().vec();
    for (const c10::IValue& v : items)
      if (v.isTensor()) return v.toTensor();
    fail(who, " returned a ", out.isTuple() ? "tuple" : "list", " of ", items.size(), " items with no tensor in it");
  }
  if (out.isGenericDict()) {
    c10::Dict<c10::IValue, c10::IValue> d = out.toGenericDict();
    std::vector<torch::Tensor> tensors;
    for (const auto& kv : d) {
      if (kv.key().isString() && kv.key().toStringRef() == "logits" && kv.value().isTensor())
        return kv.value().toTensor();
      if (kv.value().isTensor()) tensors.push_back(kv.value().toTensor());
    }
    if (tensors.size() == 1) return tensors[0];
    fail(who, " returned a dict without a \"logits\" tensor (", tensors.size(), " tensors in it)");
  }
  fail(who, " returned a ", out.tagKind(), "; expected logits: a tensor, a tuple holding one, or a dict with \"logits\"");
}

// The line of a TorchScript error that says what went wrong: the interpreter's message is a
// traceback whose last line is the cause; other messages lead with it.
std::string cause_of(const std::string& message) {
  std::string m = message;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  if (m.find("Traceback of TorchScript") != std::string::npos) return m.substr(m.rfind('\n') + 1);
  return m.substr(0, m.find('\n'));
}

class TorchScriptModelImpl : public ModelImpl {
 public:
  TorchScriptModelImpl(torch::jit::Module module, std::string who) : module_(std::move(module)), who_(std::move(who)) {
    // The module's tensors, registered here too (same storage): .to(device), parameters(),
    // freezing and the teacher fingerprint then work as for any retort model. Module names
    // may not contain '.', so dotted paths become '_'-joined ones (made unique by index).
    int64_t i = 0;
    for (const auto& p : module_.named_parameters(/*recurse=*/true))
      register_parameter(cat("p", i++, "_", sanitize(p.name)), p.value, p.value.requires_grad());
    i = 0;
    for (const auto& b : module_.named_buffers(/*recurse=*/true)) register_buffer(cat("b", i++, "_", sanitize(b.name)), b.value);
  }

  ModelOutput forward(const torch::Tensor& x) override {
    c10::IValue out;
    try {
      out = module_.forward({x});
    } catch (const std::exception& e) {  // c10::Error and the interpreter's own errors
      fail(who_, " failed on input ", x.sizes(), " (", x.scalar_type(), "): ", cause_of(e.what()));
    }
    torch::Tensor logits = logits_in(out, who_);
    if (!logits.is_floating_point())
      fail(who_, " returned logits of type ", logits.scalar_type(), "; expected floating point");
    if (logits.scalar_type() != torch::kFloat32) logits = logits.to(torch::kFloat32);
    return {logits, {}};
  }

  void train(bool on) override {
    ModelImpl::train(on);
    module_.train(on);
  }

 private:
  static std::string sanitize(std::string s) {
    for (char& ch : s)
      if (ch == '.') ch = '_';
    return s;
  }
  torch::jit::Module module_;
  std::string who_;
};

}  // namespace

LoadedModel load_torchscript(const fs::path& file) {
  if (!fs::exists(file)) fail("no TorchScript file at '", file.string(), "'");
  if (!fs::is_regular_file(file)) fail("'", file.string(), "' is not a file (a TorchScript model is one .pt file)");
  std::string who = cat("the TorchScript model ", file.string());
  torch::jit::Module module;
  try {
    module = torch::jit::load(file.string(), torch::kCPU);
  } catch (const std::exception& e) {
    fail(file.string(), " is not a TorchScript module (save one with torch.jit.trace(model, example).save(path)): ",
         cause_of(e.what()));
  }
  if (!module.find_method("forward")) fail(who, " has no forward method");
  module.eval();
  LoadedModel out;
  out.model = std::make_shared<TorchScriptModelImpl>(std::move(module), who);
  out.spec = {"torchscript", {{"path", fs::absolute(file).string()}, {"bytes", static_cast<int64_t>(fs::file_size(file))}}};
  out.dir = file.parent_path();
  // A language model's tokenizer, when saved beside it (retort's tokenizer.json).
  if (fs::exists(out.dir / "tokenizer.json")) out.tokenizer = load_tokenizer(out.dir);
  return out;
}

int64_t probe_lm_vocabulary(ModelImpl& model, int64_t T, const std::string& who) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  torch::Tensor ids = torch::zeros({2, T}, torch::kInt64).to(model_device(model));
  torch::Tensor logits;
  try {
    logits = model.forward(ids).logits;
  } catch (const c10::Error& e) {
    std::string m = e.what_without_backtrace();
    fail(who, " cannot take token ids of shape ", ids.sizes(), " (int64): ", m.substr(0, m.find('\n')));
  } catch (const Error& e) {
    fail(who, " is not a language model: ", e.what());
  }
  model.train(was_training);
  if (logits.dim() != 3 || logits.size(0) != 2 || logits.size(1) != T)
    fail(who, " maps token ids ", ids.sizes(), " to logits of shape ", logits.sizes(),
         "; a language model gives (batch, time, vocab) = [2, ", T, ", V]");
  return logits.size(2);
}

}  // namespace retort
