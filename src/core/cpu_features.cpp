#include "core/cpu_features.hpp"

#include <sched.h>

#include <thread>

namespace wkv {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    // F16C is not among GCC 12's __builtin_cpu_supports names: CPUID leaf 1, ECX bit 29.
    unsigned a, b, cx, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(cx), "=d"(d) : "a"(1), "c"(0));
    c.f16c = (cx >> 29) & 1u;
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    // AMX: CPUID leaf 7 subleaf 0, EDX bits 22 (bf16), 24 (tile), 25 (int8). Using the tiles
    // also needs the Linux arch_prctl(ARCH_REQ_XCOMP_PERM) permission (kernels/cpu/amx.cpp).
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(cx), "=d"(d) : "a"(7), "c"(0));
    c.amx_bf16 = (d >> 22) & 1u;
    c.amx_tile = (d >> 24) & 1u;
    c.amx_int8 = (d >> 25) & 1u;
#endif
    return c;
  }();
  return f;
}

std::string cpu_features_str() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* n) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += n;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  add(f.amx_tile, "amx-tile");
  add(f.amx_bf16, "amx-bf16");
  add(f.amx_int8, "amx-int8");
  return s.empty() ? "none" : s;
}

size_t available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<size_t>(n);
  }
  const unsigned h = std::thread::hardware_concurrency();
  return h ? h : 1;
}

}  // namespace wkv
