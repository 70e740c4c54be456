// Fuzzes the safetensors reader; whatever loads must also write and read back identically.
#include <cstdint>
#include <cstdlib>

#include "formats/formats.hpp"
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  std::map<std::string, std::string> meta;
  auto r = wkv::parse_safetensors_memory("fuzz.safetensors", in, nullptr, &meta);
  if (!r) return 0;
  wkv::fuzz::touch_all(*r);

  std::string out;
  wkv::ByteSink sink = [&](const void* d, size_t n) {
    out.append(static_cast<const char*>(d), n);
    return true;
  };
  if (!wkv::write_safetensors(sink, *r, meta).ok()) return 0;  // e.g. names that are not UTF-8
  std::map<std::string, std::string> meta2;
  auto back = wkv::parse_safetensors_memory(
      "roundtrip", {reinterpret_cast<const std::byte*>(out.data()), out.size()}, nullptr, &meta2);
  if (!back || back->size() != r->size() || meta2 != meta) std::abort();
  for (const auto& [name, t] : *r) {
    auto it = back->find(name);
    if (it == back->end() || it->second.shape != t.shape || it->second.dtype != t.dtype ||
        wkv::contiguous_bytes(it->second) != wkv::contiguous_bytes(t))
      std::abort();
  }
  return 0;
}
