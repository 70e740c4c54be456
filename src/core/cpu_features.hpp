// What this CPU and process may use: SIMD extensions (from CPUID through the compiler's
// builtins) and the number of cores the process may run on (its affinity mask).
#pragma once

#include <cstddef>
#include <string>

namespace wkv {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
};

// Detected once.
const CpuFeatures& cpu_features();
// "avx2 fma f16c ..." for logs and `wkv bench`.
std::string cpu_features_str();
// Cores in this process's affinity mask (at least 1).
size_t available_cores();

}  // namespace wkv
