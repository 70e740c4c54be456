// wkv init: write a random RWKV-7 checkpoint of the given sizes (for benchmarks and tests;
// official-initialisation training checkpoints come with `wkv train`).
#include <iostream>

#include "cli.hpp"
#include "formats/formats.hpp"
#include "model/init.hpp"

namespace wkv::cli {

int cmd_init(int argc, char** argv) {
  CLI::App app{"Write a random-weight RWKV-7 checkpoint (.safetensors) of the given sizes.",
               "wkv init"};
  V7Dims d;
  std::string out, dtype = "f32";
  uint64_t seed = 1;
  app.add_option("-o,--output", out, "output .safetensors file")->required();
  app.add_option("--n-layer", d.n_layer, "layers")->check(CLI::Range(1, 256));
  app.add_option("--n-embd", d.n_embd, "width C")->check(CLI::Range(1, 16384));
  app.add_option("--head-size", d.head_size, "head size N")->check(CLI::Range(1, 1024));
  app.add_option("--vocab", d.vocab_size, "vocabulary size")->check(CLI::Range(1, 1 << 20));
  app.add_option("--ffn", d.ffn_size, "FFN width (default 4 * n_embd)")->check(CLI::Range(0, 1 << 18));
  app.add_option("--dtype", dtype, "f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--seed", seed, "random seed");
  return run(app, argc, argv, [&] {
    auto t = random_v7(d, seed, dtype == "bf16" ? DType::bf16 : DType::f32);
    if (!t) return fail(t.error());
    Status s = save_safetensors(out, *t, {{"format", "pt"}, {"wkv.generator", "wkv init"}});
    if (!s) return fail(s.error());
    return 0;
  });
}

WKV_COMMAND("init", "write a random RWKV-7 checkpoint of given sizes (benchmarks, tests)", cmd_init);

}  // namespace wkv::cli
