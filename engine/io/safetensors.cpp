#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors I/O copies raw bytes and assumes a little-endian host"
#endif

namespace asap {
namespace {

using json = nlohmann::ordered_json;  // keeps header order, so load returns tensors in write order

// The reference implementation's limit; a larger header is a corrupt or hostile file.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw IoError("safetensors file '" + path + "': " + problem);
}

const char* st_dtype(DType t) { return t == DType::F32 ? "F32" : t == DType::F64 ? "F64" : "I32"; }

bool parse_dtype(const std::string& s, DType& out) {
  if (s == "F32") out = DType::F32;
  else if (s == "F64") out = DType::F64;
  else if (s == "I32") out = DType::I32;
  else return false;
  return true;
}

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(path, sys_error("write failed"));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

uint64_t get_u64(const json& v, const std::string& path, const std::string& what) {
  if (!v.is_number_unsigned()) fail(path, what + " must be a non-negative integer, got " + v.dump());
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& path, const std::string& name, const json& info) {
  const std::string where = "tensor '" + name + "'";
  if (!info.is_object()) fail(path, where + ": header entry is not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!info.contains(field)) fail(path, where + ": missing field '" + field + "'");
  Entry e;
  e.name = name;
  if (!info["dtype"].is_string()) fail(path, where + ": dtype is not a string");
  const std::string dt = info["dtype"].get<std::string>();
  if (!parse_dtype(dt, e.dtype)) fail(path, where + ": unknown dtype '" + dt + "' (supported: F32, F64, I32)");
  const json& shape = info["shape"];
  if (!shape.is_array()) fail(path, where + ": shape is not an array");
  if (shape.size() > static_cast<size_t>(kMaxDims))
    fail(path, where + ": rank " + std::to_string(shape.size()) + " exceeds " + std::to_string(kMaxDims));
  // Bound the byte size, not just the element count: numel * dtype_size must not wrap (a
  // [2^61] F64 tensor once passed as 0 bytes), and no single dimension may exceed int64 even
  // when another one is 0.
  const uint64_t max_numel = (uint64_t{1} << 62) / dtype_size(e.dtype);
  uint64_t numel = 1;
  for (const json& d : shape) {
    const uint64_t v = get_u64(d, path, where + ": shape entry");
    if (v > max_numel || (v != 0 && numel > max_numel / v))
      fail(path, where + ": shape " + shape.dump() + " is too large");
    numel *= v;
    e.shape.push_back(static_cast<int64_t>(v));
  }
  const json& off = info["data_offsets"];
  if (!off.is_array() || off.size() != 2) fail(path, where + ": data_offsets must be [begin, end]");
  e.begin = get_u64(off[0], path, where + ": data_offsets begin");
  e.end = get_u64(off[1], path, where + ": data_offsets end");
  if (e.end < e.begin) fail(path, where + ": data_offsets " + off.dump() + " end before begin");
  const uint64_t need = numel * dtype_size(e.dtype);
  if (e.end - e.begin != need)
    fail(path, where + ": shape " + shape.dump() + " of " + dt + " needs " + std::to_string(need) +
                   " bytes but data_offsets " + off.dump() + " span " + std::to_string(e.end - e.begin));
  return e;
}

}  // namespace

bool SafetensorsFile::has(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& kv) { return kv.first == name; });
}

const Tensor& SafetensorsFile::get(const std::string& name) const {
  for (const auto& kv : tensors)
    if (kv.first == name) return kv.second;
  throw IoError("safetensors: no tensor named '" + name + "'");
}

std::map<std::string, Tensor> SafetensorsFile::as_map() const {
  return std::map<std::string, Tensor>(tensors.begin(), tensors.end());
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, NamedTensorList(tensors.begin(), tensors.end()), metadata);
}

void save_safetensors(const std::string& path, const NamedTensorList& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail(path, "'__metadata__' is reserved and cannot name a tensor");
    if (header.contains(name)) fail(path, "duplicate tensor name '" + name + "'");
    if (!t.defined()) fail(path, "tensor '" + name + "' is undefined");
    Tensor h = t.contiguous();
    if (h.device() != Device::cpu()) h = h.to(Device::cpu());
    json shape = json::array();
    for (int64_t d : h.shape()) shape.push_back(d);
    const uint64_t n = h.nbytes();
    header[name] = {{"dtype", st_dtype(h.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    host.push_back(std::move(h));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail(path, std::string("cannot encode header (names and metadata must be UTF-8): ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, sys_error("cannot create temporary file '" + tmp + "'"));
  try {
    write_all(fd, len, 8, path);
    write_all(fd, text.data(), text.size(), path);
    for (const Tensor& h : host) write_all(fd, h.raw_data(), h.nbytes(), path);
    if (::fsync(fd) != 0) fail(path, sys_error("fsync failed"));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(path, sys_error("close failed"));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = sys_error("rename from '" + tmp + "' failed");
    ::unlink(tmp.c_str());
    fail(path, msg);
  }
  // The rename is durable only once the folder's entry is on disk.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, sys_error("cannot open"));
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8)
    fail(path, "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  uint8_t len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n > file_size - 8)
    fail(path, "header length " + std::to_string(n) + " runs past the end of the file (" +
                   std::to_string(file_size) + " bytes)");
  if (n > kMaxHeaderBytes) fail(path, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  if (!in) fail(path, "cannot read the header");
  // The spec requires the header to be a JSON object starting at the first byte.
  if (text.empty() || text[0] != '{') fail(path, "invalid JSON header: it must start with '{'");
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    fail(path, std::string("invalid JSON header: ") + e.what());
  }
  if (!header.is_object()) fail(path, "invalid JSON header: not an object");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(path, "__metadata__ value for '" + mk + "' is not a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, key, value));
  }
  // The data section must be covered exactly: sorted by offset, each tensor starts where the
  // previous one ended (the spec forbids holes, which would allow polyglot files).
  const uint64_t data_size = file_size - 8 - n;
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    const std::string offs = "[" + std::to_string(e->begin) + ", " + std::to_string(e->end) + "]";
    if (e->end > data_size)
      fail(path, "tensor '" + e->name + "': data_offsets " + offs + " run past the end of the data section (" +
                     std::to_string(data_size) + " bytes)");
    if (e->begin < covered)
      fail(path, "tensor '" + e->name + "': data_offsets " + offs + " overlap tensor '" + prev->name + "'");
    if (e->begin > covered)
      fail(path, "gap in the data section: bytes [" + std::to_string(covered) + ", " + std::to_string(e->begin) +
                     ") belong to no tensor");
    covered = e->end;
    prev = e;
  }
  if (covered != data_size)
    fail(path, "data section has " + std::to_string(data_size) + " bytes but the tensors cover only " +
                   std::to_string(covered));

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::cpu());
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) fail(path, "cannot read the data of tensor '" + e.name + "'");
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace asap
