#include "model/weights.hpp"

#include "core/quant.hpp"
#include "kernels/kernels.hpp"

namespace wkv {

void matmul(const Matrix& W, const float* X, float* Y, size_t T) {
  kernels::matmul(W.dtype, W.data, X, Y, W.rows, W.cols, T);
}

void matmul_batch(std::span<const Product> products, size_t T) {
  WKV_ASSERT(products.size() <= kernels::kMaxMatmulBatch);
  kernels::MatmulJob jobs[kernels::kMaxMatmulBatch];
  size_t n = 0;
  for (const Product& p : products) jobs[n++] = {p.W.dtype, p.W.data, p.X, p.Y, p.W.rows, p.W.cols};
  kernels::matmul_batch(std::span<const kernels::MatmulJob>(jobs, n), T);
}

void Matrix::row(size_t r, float* out) const {
  WKV_ASSERT(r < rows);
  const size_t rb = dtype_bytes(dtype, cols);
  quant::dequantize_row(dtype, static_cast<const unsigned char*>(data) + r * rb, out, cols);
}

Error WeightReader::missing(const std::string& name) const {
  return Error{where_ + ": missing tensor '" + name + "'"};
}

Error WeightReader::bad_shape(const std::string& name, const Tensor& t,
                              const std::string& want) const {
  return Error{where_ + ": tensor '" + name + "' has shape " + t.shape_str() + ", expected " +
               want};
}

Expected<std::vector<float>> WeightReader::vec(const std::string& name, int64_t n,
                                               bool any_shape) {
  auto it = t_.find(name);
  if (it == t_.end()) return missing(name);
  const Tensor& t = it->second;
  bool ok = t.numel() == n;
  if (ok && !any_shape) {
    for (size_t i = 0; i + 1 < t.shape.size(); ++i) ok = ok && t.shape[i] == 1;
    ok = ok && !t.shape.empty();
  }
  if (!ok) return bad_shape(name, t, "[" + std::to_string(n) + "] (or [1, 1, " + std::to_string(n) + "])");
  params_ += n;
  return to_f32(t);
}

Expected<Matrix> WeightReader::mat(const std::string& name, int64_t rows, int64_t cols) {
  auto it = t_.find(name);
  if (it == t_.end()) return missing(name);
  const Tensor& t = it->second;
  if (t.shape.size() != 2 || t.shape[0] != rows || t.shape[1] != cols)
    return bad_shape(name, t, "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  params_ += rows * cols;
  Matrix m;
  m.rows = static_cast<size_t>(rows);
  m.cols = static_cast<size_t>(cols);
  const bool usable = kernels::matmul_supports(t.dtype) &&
                      (!dtype_is_quantized(t.dtype) || m.cols % dtype_info(t.dtype).block == 0);
  if (t.is_contiguous() && usable) {
    m.dtype = t.dtype;
    m.data = t.data;  // in place: the TensorMap (kept by the model) owns the mapping
    return m;
  }
  auto buf = std::make_shared<std::vector<float>>(to_f32(t));
  m.dtype = DType::f32;
  m.data = buf->data();
  buffers_.push_back(buf);
  return m;
}

Expected<Matrix> WeightReader::mat_t(const std::string& name, int64_t rows, int64_t cols) {
  auto it = t_.find(name);
  if (it == t_.end()) return missing(name);
  const Tensor& t = it->second;
  if (t.shape.size() != 2 || t.shape[0] != cols || t.shape[1] != rows)
    return bad_shape(name, t, "[" + std::to_string(cols) + ", " + std::to_string(rows) + "]");
  params_ += rows * cols;
  std::vector<float> src = to_f32(t);
  if (t.dtype == DType::bf16 || t.dtype == DType::f16) {
    // Kept in its 16-bit dtype (back from fp32 exactly): half the bytes each token reads (the
    // RWKV-7 LoRAs of a 12 x 768 model are 21 MB in f32, a fifth of a q4_k_m token's reads).
    auto buf = std::make_shared<std::vector<uint16_t>>(src.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const float v = src[c * rows + r];
        (*buf)[r * cols + c] = t.dtype == DType::bf16 ? f32_to_bf16(v) : f32_to_f16(v);
      }
    Matrix m{t.dtype, buf->data(), static_cast<size_t>(rows), static_cast<size_t>(cols)};
    buffers_.push_back(buf);
    return m;
  }
  auto buf = std::make_shared<std::vector<float>>(src.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) (*buf)[r * cols + c] = src[c * rows + r];
  Matrix m{DType::f32, buf->data(), static_cast<size_t>(rows), static_cast<size_t>(cols)};
  buffers_.push_back(buf);
  return m;
}

}  // namespace wkv
