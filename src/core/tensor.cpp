#include "core/tensor.hpp"

#include "core/quant.hpp"

#include <cstring>

namespace wkv {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool Tensor::is_contiguous() const { return strides == contiguous_strides(shape) || numel() <= 1; }

std::string Tensor::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

namespace {
template <class T>
Tensor owned(DType dt, std::vector<int64_t> shape, std::vector<T> values) {
  auto buf = std::make_shared<std::vector<T>>(std::move(values));
  Tensor t;
  t.dtype = dt;
  t.strides = contiguous_strides(shape);
  t.shape = std::move(shape);
  t.data = reinterpret_cast<const std::byte*>(buf->data());
  t.owner = buf;
  return t;
}

float load_as_f32(DType dt, const std::byte* p) {
  switch (dt) {
    case DType::f32: { float v; std::memcpy(&v, p, 4); return v; }
    case DType::f16: { uint16_t v; std::memcpy(&v, p, 2); return f16_to_f32(v); }
    case DType::bf16: { uint16_t v; std::memcpy(&v, p, 2); return bf16_to_f32(v); }
    case DType::f64: { double v; std::memcpy(&v, p, 8); return static_cast<float>(v); }
    case DType::i8: return static_cast<float>(static_cast<int8_t>(*p));
    case DType::u8: return static_cast<float>(static_cast<uint8_t>(*p));
    case DType::boolean: return *p != std::byte{0} ? 1.0f : 0.0f;
    case DType::i16: { int16_t v; std::memcpy(&v, p, 2); return v; }
    case DType::i32: { int32_t v; std::memcpy(&v, p, 4); return static_cast<float>(v); }
    case DType::i64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<float>(v); }
    default: break;  // quantized: whole rows only (to_f32 handles them)
  }
  return 0.0f;
}

// Visit every element offset (in elements) in logical order.
template <class F>
void for_each_offset(const Tensor& t, F&& f) {
  const int64_t n = t.numel();
  if (n == 0) return;
  const size_t nd = t.shape.size();
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(off);
    for (size_t d = nd; d-- > 0;) {
      if (++idx[d] < t.shape[d]) {
        off += t.strides[d];
        break;
      }
      off -= t.strides[d] * (t.shape[d] - 1);
      idx[d] = 0;
    }
  }
}
}  // namespace

Tensor Tensor::from_f32(std::vector<int64_t> shape, std::vector<float> values) {
  return owned(DType::f32, std::move(shape), std::move(values));
}
Tensor Tensor::from_i32(std::vector<int64_t> shape, std::vector<int32_t> values) {
  return owned(DType::i32, std::move(shape), std::move(values));
}

Tensor Tensor::from_bf16(std::vector<int64_t> shape, std::vector<uint16_t> bits) {
  return owned(DType::bf16, std::move(shape), std::move(bits));
}

std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (dtype_is_quantized(t.dtype)) {
    WKV_ASSERT(t.is_contiguous());
    quant::dequantize_row(t.dtype, t.data, out.data(), out.size());
    return out;
  }
  const size_t es = dtype_size(t.dtype);
  if (t.is_contiguous() && t.dtype == DType::f32) {
    if (!out.empty()) std::memcpy(out.data(), t.data, out.size() * 4);
    return out;
  }
  size_t i = 0;
  for_each_offset(t, [&](int64_t off) { out[i++] = load_as_f32(t.dtype, t.data + off * es); });
  return out;
}

std::vector<std::byte> contiguous_bytes(const Tensor& t) {
  const size_t es = dtype_size(t.dtype);
  std::vector<std::byte> out(t.nbytes());
  WKV_ASSERT(t.is_contiguous() || !dtype_is_quantized(t.dtype));
  if (t.is_contiguous()) {
    if (!out.empty()) std::memcpy(out.data(), t.data, out.size());
    return out;
  }
  size_t i = 0;
  for_each_offset(t, [&](int64_t off) {
    std::memcpy(out.data() + i * es, t.data + off * es, es);
    ++i;
  });
  return out;
}

}  // namespace wkv
