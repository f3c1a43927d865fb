// TorchScript modules as retort models: the output forms users' modules return, their weights
// seen by retort (fingerprint, freezing, devices), and the checks made before training.
// Modules are compiled from TorchScript source here; tests/e2e/torchscript_test.sh uses ones
// traced and scripted by PyTorch itself.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "retort/load_model.h"
#include "retort/model.h"
#include "retort/teacher.h"
#include "retort/teacher_source.h"
#include "test_util.h"

namespace retort {
namespace {

using testing::error_of;
using testing::TempDir;

// A linear map (4 -> 3) whose forward body is `body` (TorchScript; y = x @ self.w).
std::filesystem::path save_module(const TempDir& tmp, const std::string& name, const std::string& body) {
  torch::jit::Module m("Probe");
  torch::manual_seed(3);
  m.register_parameter("w", torch::randn({4, 3}), false);
  m.register_buffer("scale", torch::full({1}, 2.0));
  m.define("def forward(self, x):\n" + body);
  auto path = tmp / name;
  m.save(path.string());
  return path;
}

TEST(TorchScript, ReturnsLogitsFromTensorTupleAndDict) {
  TempDir tmp;
  torch::Tensor x = torch::randn({5, 4});
  torch::Tensor want;
  {
    torch::manual_seed(3);
    want = torch::matmul(x, torch::randn({4, 3})) * 2.0;
  }
  for (const std::string& body : {"    return x @ self.w * self.scale\n",
                                   "    return (x @ self.w * self.scale, x)\n",
                                   "    return [x @ self.w * self.scale]\n",
                                   "    return {'hidden': x, 'logits': x @ self.w * self.scale}\n",
                                   "    return {'out': x @ self.w * self.scale}\n",
                                   "    return (x @ self.w * self.scale).double()\n"}) {
    LoadedModel m = load_torchscript(save_module(tmp, "m.pt", body));
    torch::Tensor got = m.model->forward(x).logits;
    EXPECT_EQ(got.scalar_type(), torch::kFloat32) << body;
    EXPECT_TRUE(torch::allclose(got, want, 1e-6, 1e-6)) << body;
    EXPECT_EQ(m.spec.name, "torchscript");
  }
}

TEST(TorchScript, UnusableOutputsNameWhatCameBack) {
  TempDir tmp;
  torch::Tensor x = torch::randn({5, 4});
  auto run = [&](const std::string& body) {
    LoadedModel m = load_torchscript(save_module(tmp, "bad.pt", body));
    return error_of([&] { m.model->forward(x); });
  };
  EXPECT_NE(run("    return {'a': x, 'b': x}\n").find("without a \"logits\" tensor (2 tensors"), std::string::npos);
  EXPECT_NE(run("    return (1, 2)\n").find("tuple of 2 items with no tensor"), std::string::npos);
  EXPECT_NE(run("    return (x @ self.w).long()\n").find("logits of type Long"), std::string::npos);
  // an error inside the module: its cause, not the interpreter's traceback
  std::string e = run("    return x @ self.w.t()\n");
  EXPECT_NE(e.find("failed on input [5, 4] (Float)"), std::string::npos) << e;
  EXPECT_EQ(e.find("Traceback"), std::string::npos) << e;
}

TEST(TorchScript, WeightsAreTheModelsOwn) {
  TempDir tmp;
  auto path = save_module(tmp, "m.pt", "    return x @ self.w * self.scale\n");
  LoadedModel a = load_torchscript(path), b = load_torchscript(path);
  EXPECT_EQ(count_parameters(*a.model), 12);
  ModelTeacher ta(a.model), tb(b.model);  // freezes them
  EXPECT_EQ(ta.fingerprint(), tb.fingerprint());
  for (const auto& p : a.model->parameters()) EXPECT_FALSE(p.requires_grad());
  // a change to a registered weight is a change to the module's own weight
  {
    torch::NoGradGuard no_grad;
    a.model->parameters()[0].zero_();
  }
  EXPECT_EQ(a.model->forward(torch::ones({1, 4})).logits.abs().sum().item<float>(), 0.0f);
  EXPECT_NE(ta.fingerprint(), tb.fingerprint());
}

TEST(TorchScript, FilesThatAreNotModules) {
  TempDir tmp;
  EXPECT_NE(error_of([&] { load_torchscript(tmp / "missing.pt"); }).find("no TorchScript file at"), std::string::npos);
  {
    std::ofstream(tmp / "junk.pt") << "not a zip archive";
  }
  std::string e = error_of([&] { load_torchscript(tmp / "junk.pt"); });
  EXPECT_NE(e.find("junk.pt is not a TorchScript module"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { load_torchscript(tmp.path()); }).find("is not a file"), std::string::npos);
}

TEST(TorchScript, TeacherSourcesAndLanguageModelProbe) {
  TempDir tmp;
  // ids (B, T) -> (B, T, 7) logits: a "language model" over 7 ids
  torch::jit::Module lm("Lm");
  lm.register_parameter("emb", torch::randn({7, 7}), false);
  lm.define("def forward(self, ids):\n    return self.emb[ids]\n");
  lm.save((tmp / "lm.pt").string());
  LoadedModel m = *open_teacher("torchscript:" + (tmp / "lm.pt").string()).model;
  EXPECT_EQ(m.spec.name, "torchscript");
  EXPECT_EQ(m.tokenizer, nullptr);
  EXPECT_EQ(probe_lm_vocabulary(*m.model, 5, "lm"), 7);
  // a classifier is not a language model: the probe says what it got
  LoadedModel c = load_torchscript(save_module(tmp, "c.pt", "    return x.float() @ self.w\n"));
  std::string e = error_of([&] { probe_lm_vocabulary(*c.model, 5, "the teacher"); });
  EXPECT_NE(e.find("the teacher is not a language model"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { open_teacher((tmp / "nowhere").string()); }).find("no model at"), std::string::npos);
}

}  // namespace
}  // namespace retort
