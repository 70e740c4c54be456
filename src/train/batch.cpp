// Reading and validating a [B, T] token batch.
#include "train/batch.hpp"

#include <cstring>
#include <limits>

namespace wkv::train {

Expected<std::vector<int32_t>> tensor_ids(const Tensor& t, const std::string& what) {
  if (t.dtype != DType::i32 && t.dtype != DType::i64)
    return Error{what + " has dtype " + std::string(dtype_name(t.dtype)) +
                 ", expected int32 or int64"};
  std::vector<std::byte> raw = contiguous_bytes(t);
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t v;
    if (t.dtype == DType::i32) {
      int32_t x;
      std::memcpy(&x, raw.data() + 4 * i, 4);
      v = x;
    } else {
      std::memcpy(&v, raw.data() + 8 * i, 8);
    }
    if (v < 0 || v > std::numeric_limits<int32_t>::max())
      return Error{what + ": id " + std::to_string(v) + " at position " + std::to_string(i) +
                   " is out of range"};
    ids[i] = static_cast<int32_t>(v);
  }
  return ids;
}

Expected<Batch> batch_from_tensors(const TensorMap& t, size_t V, const std::string& where) {
  Batch b;
  for (const char* name : {"tokens", "targets"}) {
    auto it = t.find(name);
    if (it == t.end()) return Error{where + ": missing tensor '" + name + "'"};
    const Tensor& ten = it->second;
    if (ten.shape.size() != 2 || ten.shape[0] <= 0 || ten.shape[1] <= 0)
      return Error{where + ": tensor '" + name + "' has shape " + ten.shape_str() +
                   ", expected [B, T] with B, T > 0"};
    auto ids = tensor_ids(ten, where + ": tensor '" + name + "'");
    if (!ids) return ids.error();
    for (size_t i = 0; i < ids->size(); ++i)
      if (size_t((*ids)[i]) >= V)
        return Error{where + ": tensor '" + name + "': id " + std::to_string((*ids)[i]) +
                     " at position " + std::to_string(i) +
                     " is outside the model's vocabulary [0, " + std::to_string(V) + ")"};
    if (std::string(name) == "tokens") {
      b.B = size_t(ten.shape[0]);
      b.T = size_t(ten.shape[1]);
      b.tokens = std::move(*ids);
    } else {
      if (size_t(ten.shape[0]) != b.B || size_t(ten.shape[1]) != b.T)
        return Error{where + ": tensor 'targets' has shape " + ten.shape_str() +
                     ", but 'tokens' is [" + std::to_string(b.B) + ", " + std::to_string(b.T) +
                     "]"};
      b.targets = std::move(*ids);
    }
  }
  return b;
}

}  // namespace wkv::train
