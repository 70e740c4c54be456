// The per-version loaders the factory chooses from (one file per version).
#pragma once

#include "model/model.hpp"

namespace wkv {

Expected<std::unique_ptr<Model>> load_v4(TensorMap tensors, const std::string& where);
// `sub` is v5_0, v5_1 or v5_2 (from detect_version): decay/bonus per head or per channel, gate.
Expected<std::unique_ptr<Model>> load_v5(TensorMap tensors, const std::string& where,
                                         ModelVersion sub);
Expected<std::unique_ptr<Model>> load_v6(TensorMap tensors, const std::string& where);
Expected<std::unique_ptr<Model>> load_v7(TensorMap tensors, const std::string& where);

}  // namespace wkv
