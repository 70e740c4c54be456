// A training batch: token ids and next-token targets, both [B, T], read from tensors
// (int32 or int64) and checked against the vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace wkv::train {

struct Batch {
  size_t B = 0, T = 0;
  std::vector<int32_t> tokens, targets;  // [B, T] row-major
};

// The ids of an int32/int64 tensor in logical order; error names `what` (dtype, range).
Expected<std::vector<int32_t>> tensor_ids(const Tensor& t, const std::string& what);

// `tokens` and `targets` from `t`: present, int32/int64, the same 2-D shape [B, T] with B, T > 0,
// every id in [0, V). Errors name `where` and the tensor.
Expected<Batch> batch_from_tensors(const TensorMap& t, size_t V, const std::string& where);

}  // namespace wkv::train
