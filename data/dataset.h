// In-memory image classification data sets and the readers that fill them.
// Images stay uint8 (as stored on disk) so CIFAR-10 train costs 150 MB, not 600 MB of floats;
// the loader converts and normalises per batch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asap::data {

struct Dataset {
  std::vector<uint8_t> images;  // N*C*H*W, NCHW, raw pixel values 0..255
  std::vector<int32_t> labels;  // N, each in [0, num_classes)
  int C = 0, H = 0, W = 0;
  int num_classes = 0;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t sample_elems() const { return static_cast<int64_t>(C) * H * W; }
  const uint8_t* image(int64_t i) const { return images.data() + i * sample_elems(); }
};

enum class DatasetKind { FashionMnist, Mnist, Cifar10, Cifar100 };
enum class SplitKind { Train, Test };

// "fashion_mnist" | "mnist" | "cifar10" | "cifar100" (also accepts "fashion-mnist", "cifar-10",
// "cifar-100"); throws asap::ConfigError naming the accepted values otherwise.
DatasetKind parse_dataset_kind(const std::string& name);
const char* dataset_kind_name(DatasetKind k);
// "train" | "test"; throws asap::ConfigError otherwise.
SplitKind parse_split_kind(const std::string& name);

// Per-channel normalisation constants (of pixel/255), the values DARTS and torchvision recipes use.
struct Normalization {
  std::vector<float> mean, stddev;
};
Normalization default_normalization(DatasetKind k);

// Folder the data set is looked up in when the config leaves it empty
// (Debian's dataset-fashion-mnist package for Fashion-MNIST, "data/<name>" otherwise).
std::string default_dataset_folder(DatasetKind k);

// Reads one split of a data set from `folder` (empty: default_dataset_folder(kind)).
// Fashion-MNIST/MNIST: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
// CIFAR-10: data_batch_1..5.bin (train), test_batch.bin (test); CIFAR-100: train.bin, test.bin;
// both also found in a cifar-10-batches-bin / cifar-100-binary subfolder.
// A missing data set throws asap::IoError with one line that says how to get it.
Dataset load_dataset(DatasetKind kind, const std::string& folder, SplitKind split);
Dataset load_dataset(const std::string& kind, const std::string& folder, const std::string& split);

}  // namespace asap::data
