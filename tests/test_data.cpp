// Data layer: readers on generated fixtures (raw and gzip IDX, CIFAR-10/100 binary), the checks
// that reject malformed files, augmentation properties, splits and loader determinism/resume.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/loader.h"
#include "data/read_bytes.h"
#include "data/split.h"
#include "engine/error.h"
#include "temp_dir.h"

using namespace asap;
using namespace asap::data;

namespace {

using Bytes = std::vector<uint8_t>;


void write_raw(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  REQUIRE(f.good());
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// n images of rows x cols with pixel (i, p) = (7*i + p) % 256.
Bytes idx_images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = kIdxImagesMagic) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t p = 0; p < rows * cols; ++p) b.push_back(static_cast<uint8_t>((7 * i + p) % 256));
  return b;
}

Bytes idx_labels(uint32_t n, uint32_t magic = kIdxLabelsMagic) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i % 10));
  return b;
}

// CIFAR records; label bytes given, pixels (i, p) = (i + 3*p) % 256.
Bytes cifar_records(const std::vector<std::vector<uint8_t>>& label_bytes) {
  Bytes b;
  for (size_t i = 0; i < label_bytes.size(); ++i) {
    b.insert(b.end(), label_bytes[i].begin(), label_bytes[i].end());
    for (int p = 0; p < kCifarPixels; ++p) b.push_back(static_cast<uint8_t>((i + 3 * p) % 256));
  }
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  }
  return "(no IoError thrown)";
}

// Images whose single pixel value identifies the sample: loader order is readable from a batch.
std::shared_ptr<Dataset> indexed_dataset(int n, int hw = 2) {
  auto d = std::make_shared<Dataset>();
  d->C = 1;
  d->H = d->W = hw;
  d->num_classes = 10;
  for (int i = 0; i < n; ++i) {
    for (int p = 0; p < hw * hw; ++p) d->images.push_back(static_cast<uint8_t>(i));
    d->labels.push_back(i % 10);
  }
  return d;
}

std::vector<int32_t> labels_of(const Batch& b) {
  const int32_t* p = b.labels.data<int32_t>();
  return std::vector<int32_t>(p, p + b.labels.numel());
}

std::vector<Batch> whole_epoch(DataLoader& l, int64_t epoch, int64_t first = 0) {
  std::vector<Batch> out;
  l.start_epoch(epoch, first);
  Batch b;
  while (l.next(b)) out.push_back(b);
  return out;
}

void require_same(const Batch& a, const Batch& b) {
  REQUIRE(a.images.shape() == b.images.shape());
  REQUIRE(a.images.to_vector() == b.images.to_vector());
  REQUIRE(labels_of(a) == labels_of(b));
}

}  // namespace

TEST_CASE("IDX reader reads gzip and raw files", "[data]") {
  const test::TempDir tmp("asap_data_test");
  const std::string dir = tmp.path();
  write_gz(dir + "/train-images-idx3-ubyte.gz", idx_images(12, 4, 3));
  write_gz(dir + "/train-labels-idx1-ubyte.gz", idx_labels(12));
  write_raw(dir + "/t10k-images-idx3-ubyte", idx_images(5, 4, 3));
  write_raw(dir + "/t10k-labels-idx1-ubyte", idx_labels(5));

  Dataset tr = load_dataset("fashion_mnist", dir, "train");
  REQUIRE(tr.size() == 12);
  REQUIRE((tr.C == 1 && tr.H == 4 && tr.W == 3 && tr.num_classes == 10));
  REQUIRE(tr.images.size() == 12u * 12u);
  CHECK(tr.image(3)[5] == (7 * 3 + 5) % 256);
  CHECK(tr.labels[11] == 1);

  Dataset te = load_dataset(DatasetKind::Mnist, dir, SplitKind::Test);
  REQUIRE(te.size() == 5);
  CHECK(te.image(4)[11] == (7 * 4 + 11) % 256);
}

TEST_CASE("IDX reader rejects malformed files with a message naming the problem", "[data]") {
  const test::TempDir tmp("asap_data_test");
  const std::string dir = tmp.path();
  auto images_err = [&](const Bytes& b) {
    write_raw(dir + "/img", b);
    return error_of([&] { load_idx(dir + "/img", dir + "/lab"); });
  };
  write_raw(dir + "/lab", idx_labels(5));

  CHECK_THAT(images_err(idx_images(5, 4, 3, 0x00000801)), Catch::Contains("img: bad magic 0x00000801") &&
                                                              Catch::Contains("expected 0x00000803"));
  Bytes cut = idx_images(5, 4, 3);
  cut.resize(cut.size() - 7);
  CHECK_THAT(images_err(cut), Catch::Contains("img: truncated: header declares 5 images of 4x3 but file holds 53 "
                                              "bytes of pixel data"));
  CHECK_THAT(images_err(Bytes{0, 0, 8, 3, 0}), Catch::Contains("truncated header"));
  Bytes extra = idx_images(5, 4, 3);
  extra.push_back(1);
  CHECK_THAT(images_err(extra), Catch::Contains("trailing bytes"));
  CHECK_THAT(images_err(idx_images(6, 4, 3)), Catch::Contains("count mismatch: 6 images but lab holds 5 labels"));

  Bytes bad_label = idx_labels(5);
  bad_label[8 + 3] = 12;
  write_raw(dir + "/img", idx_images(5, 4, 3));
  write_raw(dir + "/lab", bad_label);
  CHECK_THAT(error_of([&] { load_idx(dir + "/img", dir + "/lab"); }),
             Catch::Contains("lab: label 12 at index 3 is out of range 0..9"));
  write_raw(dir + "/lab", idx_labels(5, 0x00000803));
  CHECK_THAT(error_of([&] { load_idx(dir + "/img", dir + "/lab"); }), Catch::Contains("lab: bad magic"));
}

TEST_CASE("a truncated gzip stream is an IoError", "[data]") {
  const test::TempDir tmp("asap_data_test");
  const std::string dir = tmp.path();
  write_gz(dir + "/x.gz", idx_images(50, 8, 8));
  Bytes gz = read_file_bytes(dir + "/x.gz");  // sanity: reads back whole
  REQUIRE(gz.size() == 16u + 50u * 64u);
  std::ifstream f(dir + "/x.gz", std::ios::binary);
  Bytes comp((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  comp.resize(comp.size() / 2);
  write_raw(dir + "/cut.gz", comp);
  CHECK_THAT(error_of([&] { read_file_bytes(dir + "/cut.gz"); }), Catch::Contains("cut.gz"));
  CHECK_THAT(error_of([&] { read_file_bytes(dir + "/none.gz"); }), Catch::Contains("none.gz: cannot open"));
}

TEST_CASE("CIFAR-10 and CIFAR-100 binary readers", "[data]") {
  const test::TempDir tmp("asap_data_test");
  const std::string dir = tmp.path();
  const std::string c10 = dir + "/c10/cifar-10-batches-bin";  // the tarball's own subfolder
  std::filesystem::create_directories(c10);
  std::filesystem::create_directories(dir + "/c100");
  for (int i = 1; i <= 5; ++i)
    write_raw(c10 + "/data_batch_" + std::to_string(i) + ".bin", cifar_records({{uint8_t(i)}, {uint8_t(9)}}));
  write_raw(c10 + "/test_batch.bin", cifar_records({{3}, {4}, {5}}));

  Dataset tr = load_dataset("cifar10", dir + "/c10", "train");
  REQUIRE(tr.size() == 10);
  REQUIRE((tr.C == 3 && tr.H == 32 && tr.W == 32 && tr.num_classes == 10));
  CHECK(tr.labels == std::vector<int32_t>{1, 9, 2, 9, 3, 9, 4, 9, 5, 9});
  CHECK(tr.image(1)[100] == (1 + 300) % 256);
  CHECK(load_dataset("cifar10", dir + "/c10", "test").size() == 3);

  write_raw(dir + "/c100/train.bin", cifar_records({{1, 42}, {19, 99}}));
  write_raw(dir + "/c100/test.bin", cifar_records({{0, 0}}));
  Dataset c = load_dataset("cifar100", dir + "/c100", "train");
  REQUIRE(c.num_classes == 100);
  CHECK(c.labels == std::vector<int32_t>{42, 99});  // the fine label, not the coarse one
  CHECK(c.image(1)[3071] == (1 + 3 * 3071) % 256);

  Dataset sink;
  Bytes odd = cifar_records({{1}, {2}});
  odd.pop_back();
  CHECK_THAT(error_of([&] { parse_cifar10(odd, "data_batch_1.bin", sink); }),
             Catch::Contains("data_batch_1.bin: size 6145 bytes is not a multiple of the 3073-byte record"));
  CHECK_THAT(error_of([&] { parse_cifar10(cifar_records({{1}, {10}}), "b.bin", sink); }),
             Catch::Contains("b.bin: label 10 in record 1 is out of range 0..9"));
  CHECK_THAT(error_of([&] { parse_cifar100(cifar_records({{1, 100}}), "train.bin", sink); }),
             Catch::Contains("label 100 in record 0 is out of range 0..99"));
}

TEST_CASE("a missing data set says how to get it", "[data]") {
  const test::TempDir tmp("asap_data_test");
  const std::string dir = tmp.path();
  CHECK_THAT(error_of([&] { load_dataset("fashion_mnist", dir, "test"); }),
             Catch::Contains("apt-get install dataset-fashion-mnist"));
  const std::string c10 = error_of([&] { load_dataset("cifar10", dir, "train"); });
  CHECK_THAT(c10, Catch::Contains("data_batch_1.bin") && Catch::Contains("test_batch.bin"));
  CHECK(c10.find('\n') == std::string::npos);
  CHECK_THAT(error_of([&] { load_dataset("cifar100", dir, "test"); }), Catch::Contains("train.bin and test.bin"));
  CHECK_THROWS_AS(parse_dataset_kind("imagenet"), ConfigError);
}

TEST_CASE("augmentation primitives", "[data]") {
  const int C = 2, H = 5, W = 6;
  std::vector<uint8_t> raw(C * H * W);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(10 + 3 * i);
  std::vector<float> x(raw.size());
  Normalization norm{{0.5f, 0.25f}, {0.2f, 0.5f}};
  normalize_sample(raw.data(), x.data(), C, H, W, norm);
  CHECK(x[0] == Approx((10 / 255.0 - 0.5) / 0.2));
  CHECK(x[H * W + 1] == Approx(((10 + 3 * (H * W + 1)) / 255.0 - 0.25) / 0.5));
  Normalization fm = default_normalization(DatasetKind::FashionMnist);
  std::vector<float> one(1);
  uint8_t white = 255;
  normalize_sample(&white, one.data(), 1, 1, 1, fm);
  CHECK(one[0] == Approx((1.0 - 0.2860) / 0.3530));

  const std::vector<float> orig = x;
  SECTION("flip twice is the identity, once mirrors rows") {
    hflip(x.data(), C, H, W);
    CHECK(x[0] == orig[W - 1]);
    CHECK(x[H * W + W + 2] == orig[H * W + W + (W - 1 - 2)]);
    hflip(x.data(), C, H, W);
    CHECK(x == orig);
  }
  SECTION("crop with pad 0 is the identity; a shifted crop moves pixels and pads") {
    Generator g(1);
    random_crop(x.data(), C, H, W, 0, {}, g);
    CHECK(x == orig);
    const std::vector<float> fill{-7.f, -9.f};
    crop_at(x.data(), C, H, W, 2, 3, 0, fill);  // source shift: +1 row, -2 cols
    CHECK(x[0 * W + 2] == orig[1 * W + 0]);
    CHECK(x[H * W + 3 * W + 5] == orig[H * W + 4 * W + 3]);
    CHECK(x[0 * W + 1] == -7.f);          // left of the image
    CHECK(x[H * W + 4 * W + 3] == -9.f);  // below the image
  }
  SECTION("cutout zeroes the expected square, clipped at the border") {
    cutout_at(x.data(), C, H, W, 4, 1, 4);  // rows [-1,3) -> [0,3), cols [2,6)
    for (int c = 0; c < C; ++c)
      for (int y = 0; y < H; ++y)
        for (int xx = 0; xx < W; ++xx) {
          const int i = (c * H + y) * W + xx;
          const bool inside = y < 3 && xx >= 2;
          CHECK(x[i] == (inside ? 0.f : orig[i]));
        }
  }
  SECTION("black fill is the normalised zero pixel") {
    auto f = black_fill(C, norm);
    CHECK(f[0] == Approx(-0.5 / 0.2));
    CHECK(f[1] == Approx(-0.25 / 0.5));
  }
  SECTION("augment_sample is a function of the generator state") {
    AugmentConfig cfg{2, true, 3, norm};
    std::vector<float> a(raw.size()), b(raw.size());
    Generator g1(77), g2(77);
    augment_sample(raw.data(), a.data(), C, H, W, cfg, g1);
    augment_sample(raw.data(), b.data(), C, H, W, cfg, g2);
    CHECK(a == b);
  }
}

TEST_CASE("train/validation split", "[data]") {
  TrainValSplit s = split_train_val(10, 0.5);
  CHECK(s.train == std::vector<int64_t>{0, 1, 2, 3, 4});  // DARTS: first half for the weights
  CHECK(s.val == std::vector<int64_t>{5, 6, 7, 8, 9});
  TrainValSplit l = split_train_val(100, 0.8, false, 0, 10);
  CHECK(l.train.size() == 8u);
  CHECK(l.val == std::vector<int64_t>{8, 9});

  TrainValSplit a = split_train_val(101, 0.5, true, 5), b = split_train_val(101, 0.5, true, 5);
  CHECK(a.train == b.train);
  CHECK(a.train.size() == 50u);
  CHECK(a.val.size() == 51u);
  std::set<int64_t> all(a.train.begin(), a.train.end());
  all.insert(a.val.begin(), a.val.end());
  CHECK(all.size() == 101u);
  CHECK(a.train != split_train_val(101, 0.5, true, 6).train);
  CHECK(first_indices(7, 3) == std::vector<int64_t>{0, 1, 2});
  CHECK_THROWS_AS(split_train_val(10, 1.5), ConfigError);
}

TEST_CASE("loader: batch count, every sample once, same seed same batches with and without prefetch",
          "[data]") {
  auto d = indexed_dataset(37);
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.seed = 11;
  opt.augment = AugmentConfig{1, true, 1, {}};
  DataLoader pre(d, first_indices(37), opt);
  opt.prefetch = false;
  DataLoader sync(d, first_indices(37), opt);
  opt.drop_last = true;
  CHECK(pre.batches_per_epoch() == 5);
  CHECK(DataLoader(d, first_indices(37), opt).batches_per_epoch() == 4);

  for (int64_t e : {0, 3}) {
    auto a = whole_epoch(pre, e), b = whole_epoch(sync, e);
    REQUIRE(a.size() == 5u);
    REQUIRE(b.size() == 5u);
    std::multiset<int32_t> seen;
    for (size_t k = 0; k < a.size(); ++k) {
      require_same(a[k], b[k]);
      require_same(a[k], pre.batch_at(e, k));
      CHECK(a[k].index == static_cast<int64_t>(k));
      CHECK(a[k].images.dim(1) == 1);
      for (int32_t v : labels_of(a[k])) seen.insert(v);
    }
    CHECK(a.back().images.dim(0) == 5);  // 37 = 4*8 + 5
    CHECK(seen.size() == 37u);
  }
  // Without augmentation a pixel names its sample: each of the 37 appears exactly once.
  opt = LoaderOptions{};
  opt.batch_size = 8;
  DataLoader plain(d, first_indices(37), opt);
  std::set<int> ids;
  for (const Batch& b : whole_epoch(plain, 1))
    for (int64_t i = 0; i < b.images.dim(0); ++i) ids.insert(int(std::lround(b.images.to_vector()[i * 4] * 255)));
  CHECK(ids.size() == 37u);
  CHECK(*ids.rbegin() == 36);
  // Orders differ between epochs, and are a permutation of the indices.
  auto o0 = pre.epoch_order(0), o1 = pre.epoch_order(1);
  CHECK(o0 != o1);
  CHECK(std::set<int64_t>(o0.begin(), o0.end()).size() == 37u);
}

TEST_CASE("loader: resume at batch k of epoch e equals the uninterrupted sequence", "[data]") {
  auto d = indexed_dataset(50, 4);
  LoaderOptions opt;
  opt.batch_size = 6;
  opt.seed = 2024;
  opt.augment = AugmentConfig{2, true, 2, {{0.3f}, {0.2f}}};
  DataLoader full(d, split_train_val(50, 0.5).val, opt);
  auto ref = whole_epoch(full, 2);
  REQUIRE(ref.size() == 5u);  // 25 samples
  DataLoader resumed(d, split_train_val(50, 0.5).val, opt);
  auto tail = whole_epoch(resumed, 2, 3);
  REQUIRE(tail.size() == 2u);
  require_same(tail[0], ref[3]);
  require_same(tail[1], ref[4]);
  // Abandoning an epoch mid-way (worker blocked on a full queue) and restarting is clean.
  Batch b;
  resumed.start_epoch(2);
  REQUIRE(resumed.next(b));
  resumed.start_epoch(2, 1);
  REQUIRE(resumed.next(b));
  require_same(b, ref[1]);
  // Augmentation is actually random: a sample's image varies with the epoch.
  CHECK(full.batch_at(0, 0).images.to_vector() != full.batch_at(1, 0).images.to_vector());
}

TEST_CASE("loader: next_cycling wraps epochs; worker errors reach the consumer", "[data]") {
  auto d = indexed_dataset(10);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.shuffle = false;
  DataLoader l(d, first_indices(10), opt);
  std::vector<int64_t> epochs;
  for (int i = 0; i < 4; ++i) epochs.push_back(l.next_cycling().epoch);
  CHECK(epochs == std::vector<int64_t>{0, 0, 0, 1});

  opt.augment.norm = {{0.1f, 0.2f}, {1.f, 1.f}};  // 2 channels for 1-channel images: build throws
  DataLoader bad(d, first_indices(10), opt);
  bad.start_epoch(0);
  Batch b;
  CHECK_THROWS_AS(bad.next(b), asap::Error);
  CHECK_FALSE(bad.next(b));
  bad.start_epoch(1);  // and the loader can still be restarted and destroyed cleanly
}

TEST_CASE("Fashion-MNIST from the Debian package", "[data]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!file_exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    WARN("skipped: " << dir << " not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  Dataset d = load_dataset("fashion_mnist", "", "test");
  REQUIRE(d.size() == 10000);
  CHECK((d.C == 1 && d.H == 28 && d.W == 28));
  std::set<int32_t> labels(d.labels.begin(), d.labels.end());
  CHECK(labels.size() == 10u);
  CHECK(*labels.begin() == 0);
  CHECK(*labels.rbegin() == 9);
}
