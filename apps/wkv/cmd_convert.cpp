// wkv convert -m IN -o OUT.{gguf,safetensors} [--dtype f32|f16|bf16]: unquantized conversion.
#include <chrono>
#include <iostream>

#include "cmd_convert.hpp"

namespace wkv::cli {

int cmd_convert(int argc, char** argv) {
  CLI::App app{"Convert a checkpoint to GGUF (llama.cpp's rwkv6/rwkv7 layout) or safetensors.",
               "wkv convert"};
  std::string in, out, dtype;
  TokenizerOptions to;
  app.add_option("-m,--model", in, "input checkpoint (.pth, .safetensors, rwkv.cpp .bin, .gguf)")->required();
  app.add_option("-o,--output", out, "output file: *.gguf or *.safetensors")->required();
  app.add_option("--dtype", dtype, "store floating-point tensors as this type (default: keep)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  to.add(app);
  return run(app, argc, argv, [&] {
    const bool gguf = ends_with(out, ".gguf");
    if (!gguf && !ends_with(out, ".safetensors")) {
      std::cerr << "wkv convert: error: --output must end in .gguf or .safetensors\n" << app.help();
      return kExitUsage;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto t = load_tensors(in);
    if (!t) return fail(t.error());
    const auto t1 = std::chrono::steady_clock::now();
    for (auto& [name, ten] : *t) {
      const bool floating = ten.dtype == DType::f32 || ten.dtype == DType::f16 ||
                            ten.dtype == DType::bf16 || dtype_is_quantized(ten.dtype);
      if (!floating) continue;
      if (!dtype.empty()) ten = cast_tensor(ten, *dtype_from_name(dtype));
      else if (!gguf && dtype_is_quantized(ten.dtype)) ten = cast_tensor(ten, DType::f32);
    }
    Status st;
    if (gguf) {
      auto f = build_gguf(in, *t, to);
      if (!f) return fail(f.error());
      st = save_gguf(out, *f);
    } else {
      st = save_safetensors(out, *t);
    }
    if (!st) return fail(st.error());
    const auto t2 = std::chrono::steady_clock::now();
    std::fprintf(stderr, "wkv: %s (%s) -> %s (%s), %zu tensors; load %.2f s, write %.2f s\n",
                 in.c_str(), mb(file_size(in)).c_str(), out.c_str(), mb(file_size(out)).c_str(),
                 t->size(), std::chrono::duration<double>(t1 - t0).count(),
                 std::chrono::duration<double>(t2 - t1).count());
    return 0;
  });
}

WKV_COMMAND("convert", "convert a checkpoint to GGUF or safetensors (unquantized)", cmd_convert);

}  // namespace wkv::cli
