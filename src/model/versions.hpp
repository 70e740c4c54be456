// The per-version loaders the factory chooses from (one file per version).
#pragma once

#include "model/model.hpp"

namespace wkv {

Expected<std::unique_ptr<Model>> load_v7(TensorMap tensors, const std::string& where);

}  // namespace wkv
