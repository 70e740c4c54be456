// Fuzzes the GGUF reader, the RWKV mapping and the vocabulary reader; whatever parses must also
// write and read back identically (metadata and tensor bytes).
#include <cstdint>
#include <cstdlib>

#include "formats/gguf.hpp"
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto r = wkv::parse_gguf_memory("fuzz.gguf", in);
  if (!r) return 0;
  wkv::TensorMap all;
  for (const auto& [name, t] : r->tensors) all.emplace(name, t);
  wkv::fuzz::touch_all(all);
  if (auto m = wkv::gguf_to_rwkv(*r, "fuzz.gguf"); m) wkv::fuzz::touch_all(*m);
  (void)wkv::gguf_vocab(*r, "fuzz.gguf");

  std::string out;
  wkv::ByteSink sink = [&](const void* d, size_t n) {
    out.append(static_cast<const char*>(d), n);
    return true;
  };
  if (!wkv::write_gguf(sink, *r).ok()) std::abort();  // everything the reader accepts is writable
  auto back = wkv::parse_gguf_memory(
      "roundtrip", {reinterpret_cast<const std::byte*>(out.data()), out.size()});
  if (!back || back->tensors.size() != r->tensors.size() || back->alignment != r->alignment)
    std::abort();
  if (back->metadata.size() != r->metadata.size()) std::abort();
  for (size_t i = 0; i < r->metadata.size(); ++i)
    if (back->metadata[i].first != r->metadata[i].first || !(back->metadata[i].second == r->metadata[i].second))
      std::abort();
  for (size_t i = 0; i < r->tensors.size(); ++i) {
    const auto& a = r->tensors[i];
    const auto& b = back->tensors[i];
    if (a.first != b.first || a.second.shape != b.second.shape || a.second.dtype != b.second.dtype ||
        wkv::contiguous_bytes(a.second) != wkv::contiguous_bytes(b.second))
      std::abort();
  }
  return 0;
}
