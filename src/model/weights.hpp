// Turning a TensorMap into typed weights, shared by every version: each getter checks the
// tensor exists and has the expected shape, with errors that name the tensor and the file.
#pragma once

#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace wkv {

// A weight matrix [rows, cols] for y = W x: f32, bf16, f16 or block-quantized (q8_0, q4_0,
// q4_1, q5_0, q5_1 in blocks of 32; q2_k .. q6_k in super-blocks of 256) data, used in place
// from the file when contiguous in one of those dtypes (quantized ones also need cols to be a
// multiple of the block), else converted once to f32 at load. Row o starts at dtype_bytes(dtype, cols) * o bytes.
struct Matrix {
  DType dtype = DType::f32;
  const void* data = nullptr;
  size_t rows = 0, cols = 0;

  // Row r as fp32 (any dtype; quantized rows dequantized exactly).
  void row(size_t r, float* out) const;
};

// Y[T, rows] = X[T, cols] * W^T through the kernel dispatch table (rows split across the
// kernels' thread pool; bit-identical for any thread count).
void matmul(const Matrix& W, const float* X, float* Y, size_t T);

// Y = X * W^T for each product, independent of each other (no Y is another's X), handed to
// the threads together (kernels::matmul_batch): the same bits as matmul on each in turn.
struct Product {
  const Matrix& W;
  const float* X;
  float* Y;
};
// (A span so a caller can hand over the first n of a fixed list, e.g. without a layer's
// optional product.)
void matmul_batch(std::span<const Product> products, size_t T);
inline void matmul_batch(std::initializer_list<Product> products, size_t T) {
  matmul_batch(std::span<const Product>(products.begin(), products.size()), T);
}

class WeightReader {
 public:
  WeightReader(const TensorMap& tensors, std::string where) : t_(tensors), where_(std::move(where)) {}

  bool has(const std::string& name) const { return t_.count(name) != 0; }
  // A vector of n values; accepts shapes [n], [1, n], [1, 1, n] or any shape with n elements
  // when `any_shape` (e.g. r_k [H, N]).
  Expected<std::vector<float>> vec(const std::string& name, int64_t n, bool any_shape = false);
  // A matrix stored [rows, cols], used as y = W x.
  Expected<Matrix> mat(const std::string& name, int64_t rows, int64_t cols);
  // A matrix stored [cols, rows] (LoRA first/second factors used as x @ W): transposed once.
  Expected<Matrix> mat_t(const std::string& name, int64_t rows, int64_t cols);
  // Total elements of the tensors read so far.
  int64_t params() const { return params_; }
  // Owned buffers backing converted weights; the model keeps them.
  std::vector<std::shared_ptr<void>>& buffers() { return buffers_; }

  Error missing(const std::string& name) const;
  Error bad_shape(const std::string& name, const Tensor& t, const std::string& want) const;

 private:
  const TensorMap& t_;
  std::string where_;
  int64_t params_ = 0;
  std::vector<std::shared_ptr<void>> buffers_;
};

}  // namespace wkv
