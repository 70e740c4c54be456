// Fuzzes load_pth. Inputs starting with "PK" are whole zip files; any other input is taken as a
// data.pkl and wrapped in a torch-style zip with storages "0".."3" (256 bytes each), so that the
// restricted unpickler and the tensor bound checks are reached without zip-level mutations.
#include <cstdint>
#include <cstring>

#include "formats/builders.hpp"
#include "formats/formats.hpp"
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (size >= 2 && std::memcmp(data, "PK", 2) == 0) {
    auto r = wkv::load_pth_from_memory("fuzz.pth", in);
    if (r) wkv::fuzz::touch_all(*r);
    return 0;
  }
  std::vector<wkv::test::ZipItem> items{
      {"archive/data.pkl", std::string(reinterpret_cast<const char*>(data), size)}};
  for (char k = '0'; k <= '3'; ++k) items.push_back({std::string("archive/data/") + k, std::string(256, k)});
  // Copy into an exactly sized heap buffer so that reads past the end are caught.
  const std::string z = wkv::test::build_zip(items).bytes;
  std::vector<std::byte> buf(reinterpret_cast<const std::byte*>(z.data()),
                             reinterpret_cast<const std::byte*>(z.data()) + z.size());
  auto r = wkv::load_pth_from_memory("fuzz.pth", buf);
  if (r) wkv::fuzz::touch_all(*r);
  return 0;
}
