// Checkpoint files in a run folder and how a run picks the one it resumes from.
// A checkpoint is CKPT.pt (Trainer::save_checkpoint: model, optimizer, position, RNG) and its
// sidecar CKPT.json with the .pt's digest, checked on load. A run folder keeps two:
// checkpoints/last.pt and checkpoints/previous.pt, so that a damaged last one is passed over.
#pragma once
#include <filesystem>
#include <string>

namespace retort {

class Trainer;

// CKPT.pt -> CKPT.json: where the digest of a checkpoint is kept.
std::filesystem::path checkpoint_sidecar(const std::filesystem::path& checkpoint);
// checkpoints/last.pt -> checkpoints/previous.pt: the one kept before it.
std::filesystem::path previous_checkpoint(const std::filesystem::path& last);
// True when `dir` (a run's checkpoints/ folder) holds last.pt or previous.pt.
bool has_checkpoint(const std::filesystem::path& dir);

// Makes `last` (and its sidecar) the previous checkpoint too, by hard link (a copy where the
// filesystem has none), before a new `last` replaces it. At every moment of a save that a kill
// may interrupt, one of the two is whole and matches its digest.
void keep_as_previous(const std::filesystem::path& last);

// Loads the newest good checkpoint of `last` and previous_checkpoint(last) into `trainer`. One
// that fails its digest or cannot be read (Damaged) is passed over, removed, and named in
// `*passed_over` (one line: which file and why). Returns the file loaded, or an empty path when
// neither exists. Both present and damaged -> Error naming both.
std::filesystem::path load_newest_good_checkpoint(Trainer& trainer,
                                                  const std::filesystem::path& last,
                                                  std::string* passed_over);

}  // namespace retort
