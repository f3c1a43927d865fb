// Checkpoint files: the trainer's state with a digest sidecar, the previous checkpoint kept
// beside the last, and the choice of the one a run resumes from.
#include "retort/checkpoints.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/trainer.h"

namespace retort {

fs::path checkpoint_sidecar(const fs::path& checkpoint) {
  fs::path p = checkpoint;
  return p.replace_extension(".json");
}

fs::path previous_checkpoint(const fs::path& last) { return last.parent_path() / "previous.pt"; }

bool has_checkpoint(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "last.pt", ec) || fs::exists(dir / "previous.pt", ec);
}

void keep_as_previous(const fs::path& last) {
  std::error_code ec;
  if (!fs::exists(last, ec)) return;
  const fs::path previous = previous_checkpoint(last);
  // Sidecar first, then the weights: until the new last.pt is renamed into place, last.pt and
  // previous.pt are the same file, each with its digest.
  for (const auto& [from, to] : {std::pair{checkpoint_sidecar(last), checkpoint_sidecar(previous)},
                                 std::pair{last, previous}}) {
    fs::remove(to, ec);
    if (!fs::exists(from, ec)) continue;
    fs::create_hard_link(from, to, ec);
    if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    if (ec) fail("cannot keep ", from.string(), " as ", to.string(), ": ", ec.message());
  }
}

fs::path load_newest_good_checkpoint(Trainer& trainer, const fs::path& last,
                                     std::string* passed_over) {
  std::string damaged;
  for (const fs::path& candidate : {last, previous_checkpoint(last)}) {
    if (!fs::exists(candidate)) continue;
    try {
      trainer.load_checkpoint(candidate);
    } catch (const Damaged& e) {
      if (!damaged.empty())
        fail("no usable checkpoint in ", last.parent_path().string(), ": ", damaged, "; and ",
             e.what(), "; pass --fresh to start over");
      damaged = e.what();
      continue;
    }
    if (!damaged.empty()) {
      // What was damaged must not be kept as "previous" by the next save.
      std::error_code ec;
      fs::remove(last, ec);
      fs::remove(checkpoint_sidecar(last), ec);
      if (passed_over) *passed_over = damaged;
    }
    return candidate;
  }
  if (!damaged.empty())
    fail("no usable checkpoint in ", last.parent_path().string(), ": ", damaged,
         "; pass --fresh to start over");
  return {};
}

// ---- the trainer's state ----------------------------------------------------------------------

void Trainer::save_checkpoint(const std::filesystem::path& path) const {
  std::string digest;
  atomic_write(path, [&](const fs::path& tmp) {
    torch::serialize::OutputArchive archive, model_archive, optim_archive;
    model_->save(model_archive);
    optimizer_->save(optim_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optim_archive);
    archive.write("position",
                  torch::tensor({step_, epoch_, batch_, epoch_loss_count_}, torch::kInt64));
    archive.write("accumulators",
                  torch::tensor({epoch_loss_sum_, train_seconds_}, torch::kFloat64));
    archive.write("seed", torch::tensor({static_cast<int64_t>(options_.seed)}, torch::kInt64));
    archive.write("rng", torch::Tensor(at::detail::getDefaultCPUGenerator().get_state()));
    archive.save_to(tmp.string());
    digest = file_digest(tmp);
  });
  // After the .pt: a kill in between leaves a sidecar that refuses the new file, never one that
  // vouches for a file it did not see.
  nlohmann::json sidecar = {{"format", "retort-checkpoint"},
                            {"version", 1},
                            {"file", path.filename().string()},
                            {"digest", digest},
                            {"step", step_},
                            {"epoch", epoch_}};
  atomic_write_text(checkpoint_sidecar(path), sidecar.dump(2) + "\n");
}

void Trainer::load_checkpoint(const std::filesystem::path& path) {
  if (!fs::exists(path)) fail("checkpoint ", path.string(), " does not exist");
  const fs::path sidecar_path = checkpoint_sidecar(path);
  std::string recorded;
  if (fs::exists(sidecar_path)) {
    auto sidecar =
        nlohmann::json::parse(read_text(sidecar_path), nullptr, /*allow_exceptions=*/false);
    if (sidecar.is_discarded() || !sidecar.is_object() || !sidecar.contains("digest") ||
        !sidecar["digest"].is_string())
      throw Damaged(cat("checkpoint ", path.string(), " is damaged: its sidecar ",
                        sidecar_path.string(), " holds no digest (not JSON or cut short)"));
    recorded = sidecar["digest"].get<std::string>();
  }
  // One read: the bytes hashed are the bytes loaded.
  const std::vector<uint8_t> bytes = read_bytes(path);
  check_digest(cat("checkpoint ", path.string()),
               digest_text(Hasher().update(bytes.data(), bytes.size())), recorded,
               sidecar_path.string());
  try {
    torch::serialize::InputArchive archive, model_archive, optim_archive;
    archive.load_from(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    archive.read("model", model_archive);
    archive.read("optimizer", optim_archive);
    torch::Tensor pos, acc, seed, rng;
    archive.read("position", pos);
    archive.read("accumulators", acc);
    archive.read("seed", seed);
    archive.read("rng", rng);
    if (static_cast<uint64_t>(seed[0].item<int64_t>()) != options_.seed)
      fail("checkpoint ", path.string(), " was made with seed ", seed[0].item<int64_t>(),
           ", this run has seed ", options_.seed);
    model_->load(model_archive);
    optimizer_->load(optim_archive);
    step_ = pos[0].item<int64_t>();
    epoch_ = pos[1].item<int64_t>();
    batch_ = pos[2].item<int64_t>();
    epoch_loss_count_ = pos[3].item<int64_t>();
    epoch_loss_sum_ = acc[0].item<double>();
    train_seconds_ = acc[1].item<double>();
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    gen.set_state(rng);
  } catch (const c10::Error& e) {
    throw Damaged(cat(
        "checkpoint ", path.string(),
        " cannot be loaded (corrupt, or from a different model): ", e.what_without_backtrace()));
  }
}

}  // namespace retort
