// Writes small, valid seed inputs for fuzz_pth and fuzz_safetensors (real checkpoints from
// ../shared/testdata make good seeds too, but they are large and slow to mutate).
#include <cstdio>
#include <fstream>

#include "formats/builders.hpp"
#include "formats/formats.hpp"

namespace {

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <pth_seed_dir> <safetensors_seed_dir>\n", argv[0]);
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
  return 0;
}
