// wkv init: write a fresh RWKV-7 checkpoint of the given sizes, with the official training
// initialisation (default; what `wkv train` starts from) or random weights of realistic
// magnitude (--init random: benchmarks and tests that need every path non-zero).
#include <iostream>

#include "cli.hpp"
#include "formats/formats.hpp"
#include "formats/pth_write.hpp"
#include "model/init.hpp"
#include "train/init.hpp"

namespace wkv::cli {

int cmd_init(int argc, char** argv) {
  CLI::App app{"Write a fresh RWKV-7 checkpoint (.safetensors or .pth) of the given sizes.",
               "wkv init"};
  V7Dims d;
  std::string out, dtype = "f32", init = "official";
  uint64_t seed = 1;
  app.add_option("-o,--output", out, "output .safetensors or .pth file")->required();
  app.add_option("--n-layer", d.n_layer, "layers")->check(CLI::Range(1, 256));
  app.add_option("--n-embd", d.n_embd, "width C")->check(CLI::Range(1, 16384));
  app.add_option("--head-size", d.head_size, "head size N")->check(CLI::Range(1, 1024));
  app.add_option("--vocab", d.vocab_size, "vocabulary size")->check(CLI::Range(1, 1 << 20));
  app.add_option("--ffn", d.ffn_size, "FFN width (default 4 * n_embd)")->check(CLI::Range(0, 1 << 18));
  app.add_option("--init", init,
                 "official: the official training initialisation (LoRA widths from the width); "
                 "random: random weights of realistic magnitude in every tensor")
      ->check(CLI::IsMember({"official", "random"}));
  app.add_option("--dtype", dtype, "f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--seed", seed, "random seed");
  return run(app, argc, argv, [&] {
    if (d.n_embd % d.head_size != 0)
      return fail(Error{"--n-embd " + std::to_string(d.n_embd) +
                        " is not a multiple of --head-size " + std::to_string(d.head_size)});
    const DType dt = dtype == "bf16" ? DType::bf16 : DType::f32;
    TensorMap t;
    std::vector<std::string> order;
    if (init == "random") {
      auto r = random_v7(d, seed, dt);
      if (!r) return fail(r.error());
      t = std::move(*r);
      for (const auto& [name, ten] : t) order.push_back(name);
    } else {
      train::Dims td;
      td.L = d.n_layer, td.C = d.n_embd, td.N = d.head_size, td.V = d.vocab_size, td.F = d.ffn_size;
      auto p = train::official_init(td, seed);
      if (!p) return fail(p.error());
      t = train::params_to_tensors(*p);
      train::for_each_param(*p, [&](const std::string& n, const auto&) { order.push_back(n); });
      if (dt == DType::bf16)
        for (auto& [name, ten] : t) ten = f32_or_bf16_tensor(dt, ten.shape, to_f32(ten));
    }
    Status s = out.ends_with(".pth")
                   ? save_pth(out, t, order)
                   : save_safetensors(out, t, {{"format", "pt"}, {"wkv.generator", "wkv init"},
                                               {"wkv.init", init}});
    if (!s) return fail(s.error());
    return 0;
  });
}

WKV_COMMAND("init", "write a fresh RWKV-7 checkpoint of given sizes (official or random init)",
            cmd_init);

}  // namespace wkv::cli
