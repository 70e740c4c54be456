// wkv quantize -m IN -o OUT.gguf --type q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k|q4_k|q5_k|q6_k|
//                                        q4_k_m|q5_k_m [--quantize-head|--keep-head]
//
// Rule (gguf_should_quantize, formats/gguf.hpp): only the large linear layers (attention
// receptance/key/value/output/gate, FFN key/value/receptance) whose row length is a multiple of
// 32 become blocks; the embedding, norms, decay/LoRA vectors and matrices, fused lerps and the
// head (unless --quantize-head) keep their dtype, as rwkv.cpp does and close to llama.cpp
// (which also quantizes the embedding). The k-quants need rows of whole 256-value super-blocks;
// narrower matrices get llama.cpp's fallback type (quant_type_for_row), printed per tensor.
// The q4_k_m / q5_k_m presets are what llama.cpp's Q4_K_M / Q5_K_M give an RWKV model (its
// per-layer Q6_K bumps match attn_v / ffn_down names that RWKV tensors do not have): q4_k or
// q5_k for the large matrices and q6_k for the head, unless --keep-head; the file type says
// Q4_K_M / Q5_K_M. Unlike llama.cpp, the embedding stays unquantized (one row is read per
// token, so quantizing it saves file size, not time).
#include <cctype>
#include <chrono>
#include <iostream>

#include "cmd_convert.hpp"

namespace wkv::cli {

int cmd_quantize(int argc, char** argv) {
  CLI::App app{"Quantize a checkpoint's large matrices into a GGUF file.", "wkv quantize"};
  std::string in, out, type;
  bool quantize_head = false, keep_head = false;
  TokenizerOptions to;
  app.add_option("-m,--model", in, "input checkpoint (.pth, .safetensors, rwkv.cpp .bin, .gguf)")->required();
  app.add_option("-o,--output", out, "output GGUF file (*.gguf)")->required();
  app.add_option("--type", type, "block type of the large matrices")
      ->required()
      ->check(CLI::IsMember({"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k",
                             "q5_k", "q6_k", "q4_k_m", "q5_k_m"},
                            CLI::ignore_case));
  auto* qh = app.add_flag("--quantize-head", quantize_head, "quantize the head (output) matrix too");
  app.add_flag("--keep-head", keep_head,
               "keep the head in its dtype (the default, except for q4_k_m / q5_k_m)")
      ->excludes(qh);
  to.add(app);
  return run(app, argc, argv, [&] {
    if (!ends_with(out, ".gguf")) {
      std::cerr << "wkv quantize: error: --output must end in .gguf\n" << app.help();
      return kExitUsage;
    }
    // The presets: base type, head type, llama.cpp's file type id.
    std::string lower = type;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool preset = lower == "q4_k_m" || lower == "q5_k_m";
    const DType want = preset ? (lower == "q4_k_m" ? DType::q4_k : DType::q5_k) : *dtype_from_name(lower);
    const DType head_want = preset ? DType::q6_k : want;
    if (preset && !keep_head) quantize_head = true;
    const auto t0 = std::chrono::steady_clock::now();
    auto t = load_tensors(in);
    if (!t) return fail(t.error());
    auto f = build_gguf(in, *t, to);
    if (!f) return fail(f.error());
    const size_t n = f->tensors.size();
    size_t done = 0, quantized = 0;
    for (auto& [name, ten] : f->tensors) {
      ++done;
      const bool q = gguf_should_quantize(name, ten, quantize_head);
      const bool head = name == "output.weight" || name == "head.weight";
      const DType asked = head ? head_want : want;
      const DType qt = q ? quant_type_for_row(asked, ten.shape.back()) : ten.dtype;
      std::fprintf(stderr, "[%4zu/%zu] %-36s %-12s %-5s -> %s%s\n", done, n, name.c_str(),
                   ten.shape_str().c_str(), std::string(dtype_name(ten.dtype)).c_str(),
                   q ? std::string(dtype_name(qt)).c_str() : "kept",
                   q && qt != asked ? " (rows not a multiple of 256)" : "");
      if (q) {
        ten = cast_tensor(ten, qt);
        ++quantized;
      }
    }
    gguf_update_file_type(*f);
    if (preset) f->set("general.file_type", GgufValue::of_u32(lower == "q4_k_m" ? 15u : 17u));
    if (Status st = save_gguf(out, *f); !st) return fail(st.error());
    const auto t1 = std::chrono::steady_clock::now();
    std::fprintf(stderr, "wkv: %s (%s) -> %s (%s): %zu of %zu tensors %s, %.2f s\n", in.c_str(),
                 mb(file_size(in)).c_str(), out.c_str(), mb(file_size(out)).c_str(), quantized, n,
                 lower.c_str(), std::chrono::duration<double>(t1 - t0).count());
    return 0;
  });
}

WKV_COMMAND("quantize", "quantize a checkpoint's large matrices into a GGUF file", cmd_quantize);

}  // namespace wkv::cli
