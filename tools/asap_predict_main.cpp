// asap_predict RUN IN.safetensors OUT.safetensors [--train-mode]
// The engine's logits for a batch: reads tensor "x" [N, C, H, W] (float32, normalised) from IN,
// runs RUN/model.safetensors and writes "logits" (and, with --train-mode, "aux_logits" when the
// network has an auxiliary head) to OUT. The export tests compare PyTorch and onnxruntime with it.
// --train-mode: BN on batch statistics, drop-path off (the only mode in which the auxiliary head runs).
#include <cstdio>
#include <filesystem>
#include <string>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/io/safetensors.h"
#include "tools/export/model_file.h"

namespace fs = std::filesystem;
using namespace asap;

int main(int argc, char** argv) {
  try {
    bool train_mode = false;
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
      const std::string s = argv[i];
      if (s == "--train-mode") train_mode = true;
      else if (!s.empty() && s[0] == '-') throw ConfigError("unknown option '" + s + "'");
      else pos.push_back(s);
    }
    if (pos.size() != 3) throw ConfigError("usage: asap_predict RUN IN.safetensors OUT.safetensors [--train-mode]");
    exporting::LoadedModel m = exporting::load_model_file((fs::path(pos[0]) / "model.safetensors").string());
    const Tensor x = load_safetensors(pos[1]).get("x");
    m.net->train(train_mode);
    m.net->set_drop_path_prob(0.0);
    NoGradGuard no_grad;
    nas::EvalNetwork::Output y = m.net->forward_all(x);
    NamedTensorList out = {{"logits", y.logits}};
    if (y.aux_logits.defined()) out.emplace_back("aux_logits", y.aux_logits);
    save_safetensors(pos[2], out);
    return 0;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "asap_predict: %s\n", e.what());
    return 2;
  } catch (const IoError& e) {
    std::fprintf(stderr, "asap_predict: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asap_predict: %s\n", e.what());
    return 1;
  }
}
