// The model wkv ships (models/kjv-L4-D128.safetensors: a byte-level RWKV-7 that `wkv train`
// trained on the King James Bible, see models/README.md), used when a command gets no -m.
#pragma once

#include <string>

#include "core/error.hpp"

namespace wkv::cli {

inline constexpr const char* kBundledModelName = "kjv-L4-D128.safetensors";

// $WKV_MODEL if set; else the bundled model beside the binary (../models/ for a build tree,
// ../share/wkv/ once installed) or in the source tree it was built from. The error lists where
// it looked.
Expected<std::string> default_model_path();

// Leaves a given `model` as it is; an empty one becomes default_model_path() (with a note on
// stderr naming it). The error is default_model_path()'s.
Status use_default_model(std::string& model);

}  // namespace wkv::cli
