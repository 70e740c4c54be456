// Shared by the format fuzzers: read every element of every loaded tensor (so that the
// sanitizers see any out-of-bounds view) without letting the compiler drop the reads.
#pragma once

#include <cstddef>

#include "core/tensor.hpp"

namespace wkv::fuzz {

inline void touch_all(const TensorMap& tensors) {
  unsigned char acc = 0;
  for (const auto& [name, t] : tensors) {
    for (std::byte b : contiguous_bytes(t)) acc ^= static_cast<unsigned char>(b);
    for (char c : name) acc ^= static_cast<unsigned char>(c);
  }
  volatile unsigned char sink = acc;
  (void)sink;
}

}  // namespace wkv::fuzz
