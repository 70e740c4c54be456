// The dispatch table: filled once from the CPU's features (scalar reference as the fallback).
#include <cstdlib>
#include <cstring>

#include "kernels/kernels.hpp"

namespace wkv::kernels {

namespace avx2 {
void matmul_f32(const float* W, const float* X, float* Y, size_t rows, size_t cols, size_t T);
void matmul_bf16(const unsigned short* W, const float* X, float* Y, size_t rows, size_t cols,
                 size_t T);
}  // namespace avx2

namespace {
const Table kRef{ref::matmul_f32, ref::matmul_bf16, "ref"};
const Table kAvx2{avx2::matmul_f32, avx2::matmul_bf16, "avx2"};

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
}  // namespace

const Table& ref_table() { return kRef; }

const Table* avx2_table() { return cpu_has_avx2() ? &kAvx2 : nullptr; }

const Table& table() {
  static const Table& chosen = [] () -> const Table& {
    const char* force = std::getenv("WKV_KERNELS");
    if (force && std::strcmp(force, "ref") == 0) return kRef;
    if (const Table* t = avx2_table()) return *t;
    return kRef;
  }();
  return chosen;
}

}  // namespace wkv::kernels
