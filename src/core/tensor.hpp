// Tensor: a typed, strided view of memory that it keeps alive (an mmap or an owned buffer),
// and TensorMap, what every format reader returns: canonical name -> tensor, PyTorch dim order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/error.hpp"

namespace wkv {

struct Tensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;    // PyTorch order, outermost first
  std::vector<int64_t> strides;  // in elements, same order as shape
  const std::byte* data = nullptr;  // element [0, ..., 0]
  std::shared_ptr<const void> owner;  // keeps `data` valid

  int64_t numel() const;
  // Quantized tensors are contiguous with a last dim that is a multiple of the block.
  size_t nbytes() const { return dtype_bytes(dtype, static_cast<size_t>(numel())); }
  bool is_contiguous() const;
  std::string shape_str() const;  // "[3, 128]"

  // An owned contiguous tensor holding a copy of `values`.
  static Tensor from_f32(std::vector<int64_t> shape, std::vector<float> values);
  static Tensor from_i32(std::vector<int64_t> shape, std::vector<int32_t> values);
  static Tensor from_bf16(std::vector<int64_t> shape, std::vector<uint16_t> bits);
};

using TensorMap = std::map<std::string, Tensor>;

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape);

// All elements converted to fp32 in logical (row-major) order; integers and f64 convert too.
std::vector<float> to_f32(const Tensor& t);

// Copy to an owned, contiguous tensor of the same dtype (for writers).
std::vector<std::byte> contiguous_bytes(const Tensor& t);

// Checked size arithmetic for parsers of untrusted files.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

}  // namespace wkv
