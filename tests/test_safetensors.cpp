// safetensors round trips, validation of malformed files, atomic writes and the Python reader.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "engine/tensor.h"
#include "temp_dir.h"

using namespace asap;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

// Writes u64 header length (default: the JSON's size), the JSON and `data` raw bytes.
void write_raw(const std::string& file, const std::string& header, size_t data_bytes,
               long long len_override = -1) {
  std::ofstream out(file, std::ios::binary);
  const uint64_t n = len_override >= 0 ? static_cast<uint64_t>(len_override) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header << std::string(data_bytes, '\x01');
}

Tensor int_tensor(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty(Shape{static_cast<int64_t>(v.size())}, DType::I32);
  std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(int32_t));
  return t;
}

std::vector<int32_t> int_values(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.raw_data(), v.size() * sizeof(int32_t));
  return v;
}

// The repository root, from this file's path (CMake passes absolute source paths).
std::string repo_root() { return ASAP_SOURCE_DIR; }  // set by tests/CMakeLists.txt

}  // namespace

TEST_CASE("safetensors round trip keeps dtypes, shapes, values, order and metadata", "[safetensors]") {
  TempDir dir;
  const std::string file = dir.path() + "/ckpt.safetensors";
  Tensor f32 = Tensor::from_vector(std::vector<float>{0.1f, -2.5f, 3.0f, 1e-30f, 7.0f, -0.0f}, Shape{2, 3});
  Tensor f64 = Tensor::from_vector(std::vector<double>{0.1, 1.0 / 3.0, -1e300}, Shape{3});
  Tensor i32 = int_tensor({-7, 0, 2147483647});
  Tensor scalar = Tensor::scalar(42.5, DType::F64);
  Tensor empty = Tensor::zeros(Shape{0, 2});
  // A strided view is packed on save.
  Tensor wide = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, Shape{3, 4});
  Tensor view = wide.narrow(1, 1, 2);
  REQUIRE_FALSE(view.is_contiguous());
  NamedTensorList in{{"z.weight", f32}, {"a.double", f64}, {"labels", i32},
                     {"step", scalar}, {"empty", empty}, {"view", view}};
  std::map<std::string, std::string> meta{{"format", "asap"}, {"epoch", "7"}, {"note", "two words"}};
  save_safetensors(file, in, meta);

  // Header padded so the data starts 8-byte aligned.
  std::ifstream raw(file, std::ios::binary);
  unsigned char len[8];
  raw.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  CHECK(n % 8 == 0);
  CHECK(fs::file_size(file) == 8 + n + 6 * 4 + 3 * 8 + 3 * 4 + 8 + 0 + 6 * 4);

  SafetensorsFile out = load_safetensors(file);
  CHECK(out.metadata == meta);
  REQUIRE(out.tensors.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    INFO(in[i].first);
    CHECK(out.tensors[i].first == in[i].first);
    CHECK(out.tensors[i].second.dtype() == in[i].second.dtype());
    CHECK(out.tensors[i].second.shape() == in[i].second.shape());
  }
  CHECK(out.get("z.weight").to_vector() == f32.to_vector());
  CHECK(out.get("a.double").to_vector_f64() == f64.to_vector_f64());
  CHECK(int_values(out.get("labels")) == std::vector<int32_t>{-7, 0, 2147483647});
  CHECK(out.get("step").item() == 42.5);
  CHECK(out.get("empty").numel() == 0);
  CHECK(out.get("view").to_vector() == std::vector<float>{1, 2, 5, 6, 9, 10});
  CHECK(std::signbit(out.get("z.weight").to_vector()[5]));  // bytes, not values: -0 survives
  CHECK(out.has("labels"));
  CHECK_FALSE(out.has("nope"));
  CHECK_THROWS_AS(out.get("nope"), IoError);
  CHECK(out.as_map().size() == in.size());

  // Overwriting works, and no temporary file is left behind.
  save_safetensors(file, std::map<std::string, Tensor>{{"only", f64}});
  CHECK(load_safetensors(file).tensors.size() == 1);
  CHECK(load_safetensors(file).metadata.empty());
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    INFO(e.path().string());
    CHECK(e.path().filename() == "ckpt.safetensors");
    ++entries;
  }
  CHECK(entries == 1);
}

TEST_CASE("safetensors save rejects bad input and unwritable paths", "[safetensors]") {
  TempDir dir;
  Tensor t = Tensor::zeros(Shape{2});
  CHECK_THROWS_AS(save_safetensors(dir.path() + "/d.safetensors", NamedTensorList{{"a", t}, {"a", t}}), IoError);
  CHECK_THROWS_AS(save_safetensors(dir.path() + "/m.safetensors", NamedTensorList{{"__metadata__", t}}), IoError);
  const std::string missing = dir.path() + "/no/such/dir/x.safetensors";
  try {
    save_safetensors(missing, NamedTensorList{{"a", t}});
    FAIL("no exception");
  } catch (const IoError& e) {
    CHECK_THAT(e.what(), Catch::Contains(missing));
  }
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 0);
  CHECK_THROWS_AS(load_safetensors(dir.path() + "/absent.safetensors"), IoError);
}

TEST_CASE("safetensors load rejects malformed files, naming the file and the problem", "[safetensors]") {
  TempDir dir;
  struct Case {
    const char* name;
    std::string header;
    size_t data;
    long long len_override;
    const char* problem;
  };
  const std::string ok_entry = R"("a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  const std::vector<Case> cases = {
      {"short", "", 0, -2, "shorter than the 8-byte header length"},
      {"len_past_eof", "{}", 4, 1000, "runs past the end of the file"},
      {"bad_json", "{\"a\": [1, 2", 0, -1, "invalid JSON header"},
      {"not_object_start", "[1]", 0, -1, "must start with '{'"},
      {"missing_field", R"({"a": {"dtype": "F32", "shape": [1]}})", 4, -1, "missing field 'data_offsets'"},
      {"unknown_dtype", R"({"a": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}})", 2, -1,
       "unknown dtype 'BF16'"},
      {"negative_dim", R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4, -1,
       "non-negative integer"},
      {"size_mismatch", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", 4, -1,
       "needs 8 bytes"},
      {"reversed", R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 8, -1, "end before begin"},
      {"out_of_range", "{" + ok_entry + "}", 4, -1, "past the end of the data section"},
      {"overlap", "{" + ok_entry + R"(, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12, -1,
       "overlap tensor 'a'"},
      {"gap", "{" + ok_entry + R"(, "b": {"dtype": "I32", "shape": [1], "data_offsets": [12, 16]}})", 16, -1,
       "gap in the data section"},
      {"trailing", "{" + ok_entry + "}", 12, -1, "cover only 8"},
      {"bad_metadata", "{" + ok_entry + R"(, "__metadata__": {"epoch": 3}})", 8, -1, "is not a string"},
      {"offsets_shape", R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4, -1,
       "data_offsets must be [begin, end]"},
      // Fuzz regressions (fuzz/fuzz_safetensors): 2^61 F64 elements wrapped to 0 bytes and loaded
      // as a tensor with no storage; a dimension above int64 next to a 0 became a negative dim.
      {"bytes_wrap", R"({"a": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 0]}})", 0, -1,
       "is too large"},
      {"huge_dim_after_zero",
       R"({"a": {"dtype": "F32", "shape": [0, 18446744073709551615], "data_offsets": [0, 0]}})", 0, -1,
       "is too large"},
  };
  for (const Case& c : cases) {
    const std::string file = dir.path() + "/" + c.name + ".safetensors";
    if (c.len_override == -2) {
      std::ofstream(file, std::ios::binary) << "abc";
    } else {
      write_raw(file, c.header, c.data, c.len_override);
    }
    INFO("case " << c.name);
    try {
      load_safetensors(file);
      FAIL("accepted a malformed file");
    } catch (const IoError& e) {
      CHECK_THAT(e.what(), Catch::Contains(file) && Catch::Contains(c.problem));
    }
  }
  // The same layout done right is accepted (guards against a validator that rejects everything).
  const std::string good = dir.path() + "/good.safetensors";
  write_raw(good, "{" + ok_entry + R"(, "__metadata__": {"epoch": "3"}}    )", 8);
  CHECK(load_safetensors(good).get("a").numel() == 2);
}

TEST_CASE("tools/read_safetensors.py reads our files", "[safetensors]") {
  if (access("/usr/bin/python3", X_OK) != 0) {
    WARN("SKIPPED: /usr/bin/python3 not found, the Python reader is not checked");
    return;
  }
  const std::string script = repo_root() + "/tools/read_safetensors.py";
  REQUIRE(fs::exists(script));
  TempDir dir;
  const std::string file = dir.path() + "/py.safetensors";
  const std::vector<float> fv{0.1f, -2.5f, 3.25f, 1e-7f};
  const std::vector<double> dv{1.0 / 3.0, -1e300};
  save_safetensors(file,
                   NamedTensorList{{"w", Tensor::from_vector(fv, Shape{2, 2})},
                                   {"d", Tensor::from_vector(dv, Shape{2})},
                                   {"i", int_tensor({-7, 5, 2147483647})},
                                   {"s", Tensor::scalar(2.0, DType::F64)}},
                   {{"epoch", "12"}});
  const std::string cmd = "/usr/bin/python3 " + script + " " + file + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string text;
  char buf[4096];
  while (size_t k = fread(buf, 1, sizeof(buf), pipe)) text.append(buf, k);
  REQUIRE(pclose(pipe) == 0);
  INFO(text);
  std::map<std::string, std::vector<std::string>> lines;  // first word -> rest
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) {
    std::istringstream ls(line);
    std::string head, word;
    ls >> head;
    if (head == "meta") ls >> head, head = "meta:" + head;
    while (ls >> word) lines[head].push_back(word);
  }
  CHECK(lines["meta:epoch"] == std::vector<std::string>{"12"});
  REQUIRE(lines["w"].size() == 2 + fv.size());
  CHECK(lines["w"][0] == "F32");
  CHECK(lines["w"][1] == "2x2");
  // Python prints the exact double of each float32 (repr round-trips), so compare exactly.
  for (size_t k = 0; k < fv.size(); ++k) CHECK(std::stod(lines["w"][2 + k]) == static_cast<double>(fv[k]));
  REQUIRE(lines["d"].size() == 4);
  CHECK(std::stod(lines["d"][2]) == dv[0]);
  CHECK(std::stod(lines["d"][3]) == dv[1]);
  CHECK(lines["i"] == std::vector<std::string>{"I32", "3", "-7", "5", "2147483647"});
  CHECK(lines["s"] == std::vector<std::string>{"F64", "scalar", "2.0"});
}
