// asap_export RUN [--out FILE.onnx] [--batch N] [--opset K]
// Writes the trained evaluation network of a run folder (RUN/model.safetensors) as ONNX.
// Exit codes as asap_run: 0 success, 2 bad command line, 3 file problem, 1 anything else.
#include <cstdio>
#include <filesystem>
#include <string>

#include "engine/error.h"
#include "tools/export/model_file.h"
#include "tools/export/onnx_export.h"
#include "tools/run_files.h"

namespace fs = std::filesystem;
using namespace asap;

namespace {

const char* kUsage =
    "usage: asap_export RUN [--out FILE.onnx] [--batch N] [--opset K]\n"
    "  RUN          a run folder whose train stage finished (it holds model.safetensors)\n"
    "  --out FILE   the ONNX file (default: RUN/model.onnx)\n"
    "  --batch N    a fixed batch size (default: a dynamic batch dimension)\n"
    "  --opset K    ONNX opset 13..17 (default 13)\n";

int64_t to_int(const std::string& flag, const std::string& v) {
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw ConfigError("command line: " + flag + " needs an integer, not '" + v + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string run, out;
    exporting::OnnxOptions opt;
    for (int i = 1; i < argc; ++i) {
      const std::string s = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw ConfigError("command line: " + s + " needs a value");
        return argv[++i];
      };
      if (s == "-h" || s == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (s == "--out") out = value();
      else if (s == "--batch") opt.batch = to_int(s, value());
      else if (s == "--opset") opt.opset = static_cast<int>(to_int(s, value()));
      else if (!s.empty() && s[0] == '-') throw ConfigError("command line: unknown option '" + s + "'");
      else if (run.empty()) run = s;
      else throw ConfigError("command line: unexpected argument '" + s + "'");
    }
    if (run.empty()) throw ConfigError("command line: a RUN folder is required");
    if (opt.batch < 0) throw ConfigError("command line: --batch must be >= 0");
    if (opt.opset < 13 || opt.opset > 17) throw ConfigError("command line: --opset must be 13..17");
    if (out.empty()) out = (fs::path(run) / "model.onnx").string();
    const std::string model_path = (fs::path(run) / "model.safetensors").string();
    if (!run::file_exists(model_path))
      throw IoError(model_path + ": not found (the train stage writes it when it finishes)");
    const exporting::LoadedModel model = exporting::load_model_file(model_path);
    run::write_file_atomic(out, exporting::export_onnx(model, opt));
    std::printf("wrote %s (opset %d, batch %s)\n", out.c_str(), opt.opset,
                opt.batch > 0 ? std::to_string(opt.batch).c_str() : "dynamic");
    return 0;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "asap_export: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const IoError& e) {
    std::fprintf(stderr, "asap_export: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asap_export: %s\n", e.what());
    return 1;
  }
}
