// Writes a state dict as torch.save does (zip format, torch >= 1.6): a stored zip with
//   archive/data.pkl   protocol-2 pickle: collections.OrderedDict of name ->
//                      torch._utils._rebuild_tensor_v2((storage pid), offset 0, size, stride,
//                      False, collections.OrderedDict()), storage pid =
//                      ('storage', torch.FloatStorage|BFloat16Storage|HalfStorage, 'N', 'cpu',
//                      numel)
//   archive/byteorder  "little"
//   archive/data/N     the raw little-endian elements of tensor N (contiguous)
//   archive/version    "3\n"
// with every data entry 64-byte aligned. f32, bf16 and f16 tensors only.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace wkv {

// Writes `path` atomically. Keys in `order` come first in that order (the official checkpoint
// order), then any others by name; every name in `order` must be in `tensors`.
Status save_pth(const std::string& path, const TensorMap& tensors,
                const std::vector<std::string>& order = {});

}  // namespace wkv
