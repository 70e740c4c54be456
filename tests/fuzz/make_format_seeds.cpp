// Writes small, valid seed inputs for fuzz_pth, fuzz_safetensors and (given a third folder)
// fuzz_rwkvcpp (real checkpoints from ../shared/testdata make good seeds too, but they are
// large and slow to mutate).
#include <cstdio>
#include <fstream>

#include "formats/builders.hpp"
#include "formats/formats.hpp"
#include "formats/gguf.hpp"
#include "formats/rwkvcpp_builder.hpp"

namespace {

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// One small rwkv.cpp file per version (v4, v5, v6, v7), with every record type among them.
void write_rwkvcpp_seeds(const std::string& dir) {
  using wkv::test::BinRecord;
  using wkv::test::f32_record;
  auto blocks = [](size_t n, size_t bytes) {
    std::string s;
    for (size_t i = 0; i < n * bytes; ++i)
      s += static_cast<char>(i % bytes < 2 ? (i % 2 ? 0x2c : 0x00) : i * 37);
    return s;  // d (and m) = fp16 0x2c00 (1/16) at the start of each block
  };
  const std::string f16 = wkv::test::f16_data({0x3c00, 0xbc00, 0x3800, 0x0001});
  const BinRecord emb = f32_record("emb.weight", {4, 32}, 0.01f);
  write(dir + "/v4.bin", wkv::test::bin_file({emb,
      {"blocks.0.att.time_decay", 0, {32}, wkv::test::f32_data(std::vector<float>(32, -0.5f))},
      f32_record("blocks.0.att.time_first", {32}), f32_record("blocks.0.att.time_mix_k", {32}),
      {"blocks.0.att.key.weight", 2, {2, 32}, blocks(2, 18)},
      {"blocks.0.att.value.weight", 3, {2, 32}, blocks(2, 20)}}));
  write(dir + "/v5.bin", wkv::test::bin_file({emb, f32_record("blocks.0.att.ln_x.weight", {32}),
      {"blocks.0.att.time_decay", 0, {4, 8, 1}, wkv::test::f32_data(std::vector<float>(32, 0.5f))},
      {"blocks.0.att.time_first", 0, {4, 1, 1}, wkv::test::f32_data({1, 2, 3, 4})},
      f32_record("blocks.0.att.time_faaaa", {4, 8, 1}),
      {"blocks.0.att.key.weight", 7, {2, 32}, blocks(2, 22)},
      {"blocks.0.att.gate.weight", 1, {2, 2}, f16}}));
  write(dir + "/v6.bin", wkv::test::bin_file({emb, f32_record("blocks.0.att.time_maa_x", {32}),
      {"blocks.0.att.time_maa_w1", 8, {2, 32}, blocks(2, 24)},
      f32_record("blocks.0.att.time_maa_w2", {5, 32, 2}),
      f32_record("blocks.0.att.time_decay", {4, 8, 1}),
      f32_record("blocks.0.att.time_decay_w1", {2, 32}),
      f32_record("blocks.0.att.time_faaaa", {4, 8, 1})}));
  write(dir + "/v7.bin", wkv::test::bin_file({emb, f32_record("blocks.0.att.x_rwkvag", {6, 1, 32}),
      {"blocks.0.att.w1", 1, {2, 2}, f16}, f32_record("blocks.0.att.w2", {32, 2}),
      f32_record("blocks.0.att.k_k", {1, 1, 32}), f32_record("blocks.0.att.r_k", {1, 32}),
      {"blocks.0.ffn.key.weight", 9, {2, 32}, blocks(2, 34)}}, {.data_type = 9}));
}

// GGUF seeds: every metadata type and tensor type in one container, and a one-layer rwkv7 file
// with 32 channels (llama.cpp's names and shapes).
void write_gguf_seeds(const std::string& dir) {
  using wkv::GgufType;
  using wkv::GgufValue;
  wkv::GgufFile f;
  f.set("general.architecture", GgufValue::of_str("seed"));
  for (uint32_t t = 0; t <= 12; ++t)
    if (t != 8 && t != 9) f.set("k" + std::to_string(t), GgufValue::scalar(static_cast<GgufType>(t), 1));
  f.set("strs", GgufValue::str_array({"a", "\\n", ""}));
  f.set("ints", GgufValue::i32_array({1, -2, 3}));
  std::vector<float> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) / 7 - 4;
  const wkv::Tensor src = wkv::Tensor::from_f32({2, 32}, v);
  for (auto t : {wkv::DType::f32, wkv::DType::f16, wkv::DType::bf16, wkv::DType::q8_0,
                 wkv::DType::q4_0, wkv::DType::q4_1, wkv::DType::q5_0, wkv::DType::q5_1})
    f.tensors.emplace_back(std::string(wkv::dtype_name(t)), wkv::cast_tensor(src, t));
  std::vector<float> v256(256);
  for (size_t i = 0; i < v256.size(); ++i) v256[i] = static_cast<float>(i % 19) / 5 - 2;
  const wkv::Tensor src256 = wkv::Tensor::from_f32({1, 256}, v256);
  for (auto t : {wkv::DType::q2_k, wkv::DType::q3_k, wkv::DType::q4_k, wkv::DType::q5_k,
                 wkv::DType::q6_k})
    f.tensors.emplace_back(std::string(wkv::dtype_name(t)), wkv::cast_tensor(src256, t));
  (void)wkv::save_gguf(dir + "/types.gguf", f);

  const int64_t C = 32;
  wkv::TensorMap m;
  auto vec = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> x(static_cast<size_t>(n));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) / 13;
    return wkv::Tensor::from_f32(std::move(shape), std::move(x));
  };
  m["emb.weight"] = vec({8, C});
  m["head.weight"] = vec({8, C});
  for (const char* n : {"ln_out.weight", "ln_out.bias", "blocks.0.ln0.weight", "blocks.0.ln0.bias",
                        "blocks.0.ln1.weight", "blocks.0.ln1.bias", "blocks.0.ln2.weight",
                        "blocks.0.ln2.bias", "blocks.0.att.ln_x.weight", "blocks.0.att.ln_x.bias"})
    m[n] = vec({C});
  for (const char* n : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "k_k", "k_a"})
    m[std::string("blocks.0.att.") + n] = vec({1, 1, C});
  m["blocks.0.ffn.x_k"] = vec({1, 1, C});
  for (const char* n : {"w1", "a1", "g1"}) m[std::string("blocks.0.att.") + n] = vec({C, 4});
  for (const char* n : {"w2", "a2", "g2"}) m[std::string("blocks.0.att.") + n] = vec({4, C});
  m["blocks.0.att.r_k"] = vec({1, C});
  for (const char* n : {"receptance", "key", "value", "output"})
    m[std::string("blocks.0.att.") + n + ".weight"] = vec({C, C});
  m["blocks.0.ffn.key.weight"] = vec({2 * C, C});
  m["blocks.0.ffn.value.weight"] = vec({C, 2 * C});
  wkv::GgufExportOptions opt;
  for (int i = 0; i < 8; ++i) {
    opt.token_bytes.push_back(std::string(1, static_cast<char>('a' + i)));
    opt.token_types.push_back(1);
  }
  auto g = wkv::rwkv_to_gguf(m, opt);
  if (g) (void)wkv::save_gguf(dir + "/rwkv7.gguf", *g);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: %s <pth_seed_dir> <safetensors_seed_dir> [<rwkvcpp_seed_dir> [<gguf_seed_dir>]]\n",
                 argv[0]);
    return 2;
  }
  using wkv::test::TensorSpec;
  const std::string pth = argv[1], st = argv[2];
  // Pickles for fuzz_pth's wrapper (storages "0".."3" of 256 bytes).
  const std::vector<TensorSpec> specs{
      {"w", "FloatStorage", "0", 64, 0, {8, 8}, {8, 1}, false},
      {"wt", "FloatStorage", "0", 64, 1, {3, 2}, {1, 8}, true},
      {"h", "BFloat16Storage", "1", 128, 0, {128}, {1}, false},
      {"i", "LongStorage", "2", 32, 4, {2, 2}, {0, 1}, false},
      {"b", "BoolStorage", "3", 256, 0, {}, {}, false},
  };
  write(pth + "/state_dict.pkl", wkv::test::state_dict_pickle(specs));
  write(pth + "/plain_dict.pkl", wkv::test::state_dict_pickle(specs, false));
  // Whole zips: plain, zip64 with data descriptors, deflated.
  std::map<std::string, std::string> storages;
  for (char k = '0'; k <= '3'; ++k) storages[std::string(1, k)] = std::string(256, k);
  const std::string pkl = wkv::test::state_dict_pickle(specs);
  write(pth + "/plain.pth", wkv::test::pth_bytes(pkl, storages, "archive", {.align = 1}));
  write(pth + "/zip64.pth", wkv::test::pth_bytes(pkl, storages, "m", {.zip64 = true, .descriptor = true, .align = 1}));
  write(pth + "/deflated.pth", wkv::test::pth_bytes(pkl, storages, "archive", {.align = 1}, true));

  wkv::TensorMap m;
  m["a"] = wkv::Tensor::from_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  m["tokens"] = wkv::Tensor::from_i32({4}, {1, 2, 3, 4});
  m["empty"] = wkv::Tensor::from_f32({0}, {});
  for (const auto& [name, meta] : std::map<std::string, std::map<std::string, std::string>>{
           {"/plain.safetensors", {}}, {"/meta.safetensors", {{"format", "pt"}}}}) {
    if (!wkv::save_safetensors(st + name, m, meta)) return 1;
  }
  if (argc >= 4) write_rwkvcpp_seeds(argv[3]);
  if (argc == 5) write_gguf_seeds(argv[4]);
  return 0;
}
