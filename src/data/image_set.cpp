// Loads an IDX image/label pair into normalised tensors.
#include "retort/data.h"
#include "retort/error.h"

namespace retort {

namespace fs = std::filesystem;

static fs::path find_idx(const fs::path& dir, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    fs::path p = dir / (stem + ext);
    if (fs::exists(p)) return p;
  }
  fail("dataset folder ", dir, " has no ", stem, "[.gz]");
}

ImageSet load_image_set(const ImageSetOptions& o) {
  fs::path dir(o.dir);
  if (!fs::is_directory(dir))
    fail("dataset path '", o.dir, "' is not a folder (for Fashion-MNIST install dataset-fashion-mnist: ",
         "files under /usr/share/datasets/fashion-mnist)");
  if (o.split != "train" && o.split != "test") fail("split must be train or test, got ", o.split);
  std::string prefix = o.split == "train" ? "train" : "t10k";
  IdxArray img = read_idx(find_idx(dir, prefix + "-images-idx3-ubyte"));
  IdxArray lab = read_idx(find_idx(dir, prefix + "-labels-idx1-ubyte"));
  if (img.dims.size() != 3) fail("image file in ", dir, " has ", img.dims.size(), " dimensions, expected 3 (N, H, W)");
  if (lab.dims.size() != 1) fail("label file in ", dir, " has ", lab.dims.size(), " dimensions, expected 1");
  if (img.dims[0] != lab.dims[0])
    fail("dataset ", dir, " (", o.split, ") has ", img.dims[0], " images but ", lab.dims[0], " labels");
  if (o.std <= 0) fail("data.std must be > 0, got ", o.std);
  int64_t n = img.dims[0];
  if (o.subset > 0) n = std::min(n, o.subset);
  int64_t h = img.dims[1], w = img.dims[2];

  ImageSet set;
  auto bytes = torch::from_blob(img.data.data(), {img.dims[0], 1, h, w}, torch::kUInt8).narrow(0, 0, n);
  set.images = ((bytes.to(torch::kFloat32) / 255.0 - o.mean) / o.std).contiguous();
  set.labels = torch::from_blob(lab.data.data(), {lab.dims[0]}, torch::kUInt8).narrow(0, 0, n).to(torch::kInt64);
  set.num_classes = set.labels.max().item<int64_t>() + 1;
  set.black = -o.mean / o.std;
  set.source = cat(dir.string(), " (", o.split, ", ", n, " examples)");
  return set;
}

}  // namespace retort
