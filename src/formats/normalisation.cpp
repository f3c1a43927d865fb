// A classifier's input normalisation, from the run folder it was trained in.
#include "retort/normalisation.h"

#include "retort/config.h"
#include "retort/config_schema.h"
#include "retort/error.h"
#include "retort/fs.h"

namespace retort {

InputNormalisation input_normalisation(const fs::path& model_dir) {
  fs::path dir = model_dir;
  for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
    if (!fs::is_regular_file(dir / "config.toml")) continue;
    try {
      Config c = Config::load(retort_schema(), (dir / "config.toml").string(), {});
      return {c.get_float("data.mean"), c.get_float("data.std"), (dir / "config.toml").string()};
    } catch (const Error&) {
      break;  // not a retort run's config: fall back to the defaults
    }
  }
  Config d = Config::defaults(retort_schema());
  return {d.get_float("data.mean"), d.get_float("data.std"),
          "retort's defaults (no run config.toml in or above " + model_dir.string() + ")"};
}

}  // namespace retort
