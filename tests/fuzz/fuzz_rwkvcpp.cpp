// Fuzzes the rwkv.cpp .bin reader. Whatever loads is read in full (so that the sanitizers see
// any out-of-bounds view), must be consistent (contiguous, sizes matching the shapes) and must
// be writable as safetensors (every name valid UTF-8).
#include <cstdint>
#include <cstdlib>

#include "formats/formats.hpp"
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto r = wkv::load_rwkvcpp_from_memory("fuzz.bin", in);
  if (!r) {
    if (r.error().message.rfind("fuzz.bin: ", 0) != 0) std::abort();  // errors name the file
    return 0;
  }
  if (r->empty()) std::abort();
  wkv::fuzz::touch_all(*r);
  bool reserved = false, quantized = false;
  for (const auto& [name, t] : *r) {
    reserved |= name == "__metadata__";
    if (!t.is_contiguous() || t.shape.empty() || t.numel() < 1 || !t.data) std::abort();
    // Q4/Q5/Q8 records are handed out as blocks, in place (safetensors has no such dtypes).
    quantized |= wkv::dtype_is_quantized(t.dtype);
    if (t.dtype != wkv::DType::f32 && t.dtype != wkv::DType::f16 &&
        !wkv::dtype_is_quantized(t.dtype))
      std::abort();
  }
  wkv::ByteSink sink = [](const void*, size_t) { return true; };
  if (!reserved && !quantized && !wkv::write_safetensors(sink, *r).ok()) std::abort();
  return 0;
}
