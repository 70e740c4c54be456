// wkv info -m MODEL: version and sizes as one JSON object.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "default_model.hpp"

namespace wkv::cli {

int cmd_info(int argc, char** argv) {
  CLI::App app{"Print a model's version and sizes as one JSON object.", "wkv info"};
  std::string model;
  app.add_option("-m,--model", model, "checkpoint (.pth or .safetensors); default: the bundled model (models/)");
  return run(app, argc, argv, [&] {
    if (Status s = use_default_model(model); !s) return fail(s.error());
    auto m = load_model_file(model);
    if (!m) return fail(m.error());
    const Hparams& hp = (*m)->hparams();
    nlohmann::json j = {
        {"version", std::string(version_name(hp.version))},
        {"n_layer", hp.n_layer},
        {"n_embd", hp.n_embd},
        {"head_size", hp.head_size},
        {"n_head", hp.n_head},
        {"vocab_size", hp.vocab_size},
        {"ffn_size", hp.ffn_size},
        {"params", hp.params},
        {"dtype", hp.dtype},
        {"lora", hp.version == ModelVersion::v7_0
                     ? nlohmann::json{{"w", hp.lora_w}, {"a", hp.lora_a}, {"v", hp.lora_v},
                                      {"g", hp.lora_g}}
                     : hp.version == ModelVersion::v6_0
                           ? nlohmann::json{{"maa", hp.lora_maa}, {"decay", hp.lora_decay}}
                           : nlohmann::json::object()},
        {"state_bytes", (*m)->new_state().bytes()},
    };
    std::cout << j.dump() << "\n";
    return 0;
  });
}

WKV_COMMAND("info", "print a model's version and sizes as JSON", cmd_info);

}  // namespace wkv::cli
