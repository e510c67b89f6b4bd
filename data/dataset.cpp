// Data set names, defaults and file lookup: the only place that knows where files live.
#include "data/dataset.h"

#include <sys/stat.h>

#include "data/cifar.h"
#include "data/idx.h"
#include "data/read_bytes.h"
#include "engine/error.h"

namespace asap::data {

DatasetKind parse_dataset_kind(const std::string& name) {
  if (name == "fashion_mnist" || name == "fashion-mnist") return DatasetKind::FashionMnist;
  if (name == "mnist") return DatasetKind::Mnist;
  if (name == "cifar10" || name == "cifar-10") return DatasetKind::Cifar10;
  if (name == "cifar100" || name == "cifar-100") return DatasetKind::Cifar100;
  throw ConfigError("unknown dataset '" + name + "' (expected fashion_mnist, mnist, cifar10 or cifar100)");
}

const char* dataset_kind_name(DatasetKind k) {
  switch (k) {
    case DatasetKind::FashionMnist: return "fashion_mnist";
    case DatasetKind::Mnist: return "mnist";
    case DatasetKind::Cifar10: return "cifar10";
    case DatasetKind::Cifar100: return "cifar100";
  }
  return "?";
}

SplitKind parse_split_kind(const std::string& name) {
  if (name == "train") return SplitKind::Train;
  if (name == "test") return SplitKind::Test;
  throw ConfigError("unknown split '" + name + "' (expected train or test)");
}

Normalization default_normalization(DatasetKind k) {
  switch (k) {
    case DatasetKind::FashionMnist: return {{0.2860f}, {0.3530f}};
    case DatasetKind::Mnist: return {{0.1307f}, {0.3081f}};
    case DatasetKind::Cifar10: return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
    // DARTS's CIFAR-100 constants.
    case DatasetKind::Cifar100: return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
  }
  return {};
}

std::string default_dataset_folder(DatasetKind k) {
  switch (k) {
    case DatasetKind::FashionMnist: return "/usr/share/datasets/fashion-mnist";
    case DatasetKind::Mnist: return "data/mnist";
    case DatasetKind::Cifar10: return "data/cifar10";
    case DatasetKind::Cifar100: return "data/cifar100";
  }
  return {};
}

namespace {

std::string join(const std::string& folder, const std::string& file) {
  if (folder.empty()) return file;
  return folder.back() == '/' ? folder + file : folder + "/" + file;
}

// Something at `path` that is not a regular file (a folder, FIFO, device, dangling link) is an
// error of its own: "not found, install it" would send the user the wrong way.
void require_regular_if_present(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;  // absent: the caller's "not found" message
  if (::stat(path.c_str(), &st) != 0) throw IoError(path + ": a dangling symbolic link, not a data file");
  if (S_ISREG(st.st_mode)) return;
  const char* what = S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" :
                     S_ISSOCK(st.st_mode) ? "a socket" : "a device or other special file";
  throw IoError(path + ": not a regular file (" + what + "); a data file must be a regular file");
}

// "<stem>.gz" first, then the raw "<stem>"; empty when neither exists.
std::string find_idx(const std::string& folder, const std::string& stem) {
  for (const std::string& cand : {join(folder, stem + ".gz"), join(folder, stem)}) {
    require_regular_if_present(cand);
    if (file_exists(cand)) return cand;
  }
  return {};
}

Dataset load_idx_split(DatasetKind kind, const std::string& folder, SplitKind split) {
  const std::string prefix = split == SplitKind::Train ? "train" : "t10k";
  std::string images = find_idx(folder, prefix + "-images-idx3-ubyte");
  std::string labels = find_idx(folder, prefix + "-labels-idx1-ubyte");
  if (images.empty() || labels.empty()) {
    const std::string missing = prefix + (images.empty() ? "-images-idx3-ubyte" : "-labels-idx1-ubyte");
    if (kind == DatasetKind::FashionMnist) {
      throw IoError("Fashion-MNIST not found: no " + join(folder, missing) +
                    "[.gz]; install it with 'apt-get install dataset-fashion-mnist' (files land in "
                    "/usr/share/datasets/fashion-mnist) or put the four {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] "
                    "files in " + folder);
    }
    throw IoError("MNIST not found: no " + join(folder, missing) +
                  "[.gz]; download the four IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "
                  "from the MNIST site and put them in " + folder);
  }
  return load_idx(images, labels, 10);
}

// Accepts the folder itself or the subfolder the official tarball extracts to.
std::string cifar_dir(const std::string& folder, const char* sub, const std::string& probe) {
  require_regular_if_present(join(folder, probe));
  if (file_exists(join(folder, probe))) return folder;
  std::string nested = join(folder, sub);
  require_regular_if_present(join(nested, probe));
  if (file_exists(join(nested, probe))) return nested;
  return {};
}

Dataset load_cifar_split(DatasetKind kind, const std::string& folder, SplitKind split) {
  const bool c10 = kind == DatasetKind::Cifar10;
  std::vector<std::string> names;
  if (c10) {
    if (split == SplitKind::Train)
      for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
    else
      names.push_back("test_batch.bin");
  } else {
    names.push_back(split == SplitKind::Train ? "train.bin" : "test.bin");
  }
  const char* sub = c10 ? "cifar-10-batches-bin" : "cifar-100-binary";
  std::string dir = cifar_dir(folder, sub, names[0]);
  std::string missing;
  for (const auto& n : names) {
    if (!dir.empty()) require_regular_if_present(join(dir, n));
    if (dir.empty() || !file_exists(join(dir, n))) {
      missing = n;
      break;
    }
  }
  if (!missing.empty()) {
    if (c10)
      throw IoError("CIFAR-10 not found: no " + join(folder, missing) + "; expected the binary version (" +
                    "cifar-10-binary.tar.gz) extracted so that " + folder +
                    "/ (or its cifar-10-batches-bin/) holds data_batch_1.bin .. data_batch_5.bin and test_batch.bin");
    throw IoError("CIFAR-100 not found: no " + join(folder, missing) + "; expected the binary version (" +
                  "cifar-100-binary.tar.gz) extracted so that " + folder +
                  "/ (or its cifar-100-binary/) holds train.bin and test.bin");
  }
  std::vector<std::string> paths;
  for (const auto& n : names) paths.push_back(join(dir, n));
  return c10 ? load_cifar10(paths) : load_cifar100(paths);
}

}  // namespace

Dataset load_dataset(DatasetKind kind, const std::string& folder_in, SplitKind split) {
  const std::string folder = folder_in.empty() ? default_dataset_folder(kind) : folder_in;
  struct stat st;
  if (::stat(folder.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw IoError("data folder " + folder + ": not a folder (data.root names the folder holding the files)");
  if (kind == DatasetKind::FashionMnist || kind == DatasetKind::Mnist) return load_idx_split(kind, folder, split);
  return load_cifar_split(kind, folder, split);
}

Dataset load_dataset(const std::string& kind, const std::string& folder, const std::string& split) {
  return load_dataset(parse_dataset_kind(kind), folder, parse_split_kind(split));
}

}  // namespace asap::data
