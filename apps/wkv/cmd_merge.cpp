// wkv merge -m BASE --lora FILE -o OUT.{pth,safetensors}: folds LoRA adapters (from
// `wkv train --tune lora`) into a checkpoint: each adapted matrix becomes float32
// W + (alpha/R)·B·A (model/adapters.hpp), everything else is copied as stored.
#include <iostream>

#include "cli.hpp"
#include "formats/formats.hpp"
#include "formats/pth_write.hpp"

namespace wkv::cli {

int cmd_merge(int argc, char** argv) {
  CLI::App app{"Fold LoRA adapters into a checkpoint.", "wkv merge"};
  std::string model, lora, out;
  app.add_option("-m,--model", model, "base checkpoint (.pth, .safetensors, rwkv.cpp .bin, .gguf)")
      ->required();
  app.add_option("--lora", lora, "LoRA adapters (.lora.safetensors from `wkv train --tune lora`)")
      ->required();
  app.add_option("-o,--output", out, "merged checkpoint: *.pth (torch.save layout) or *.safetensors")
      ->required();
  return run(app, argc, argv, [&] {
    const bool pth = out.ends_with(".pth");
    if (!pth && !out.ends_with(".safetensors")) {
      std::cerr << "wkv merge: error: --output must end in .pth or .safetensors\n" << app.help();
      return kExitUsage;
    }
    auto t = load_tensors_with_lora(model, lora);
    if (!t) return fail(t.error());
    Status st = pth ? save_pth(out, *t) : save_safetensors(out, *t, {{"format", "wkv-merge"}});
    if (!st) return fail(st.error());
    std::fprintf(stderr, "wkv merge: %s + %s -> %s (%zu tensors)\n", model.c_str(), lora.c_str(),
                 out.c_str(), t->size());
    return 0;
  });
}

WKV_COMMAND("merge", "fold LoRA adapters into a checkpoint (.pth or .safetensors)", cmd_merge);

}  // namespace wkv::cli
