// The dispatch table: filled once from the CPU's features (scalar reference as the fallback),
// and the threaded matmul over it.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/cpu_features.hpp"
#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cpu/avx2.hpp"
#include "kernels/kernels.hpp"

namespace wkv::kernels {

namespace {
const Table kRef{
    .matmul_f32 = ref::matmul_f32,
    .matmul_bf16 = ref::matmul_bf16,
    .rows_f32 = ref::matmul_f32_rows,
    .rows_bf16 = ref::matmul_bf16_rows,
    .rows_f16 = ref::matmul_f16,
    .rows_q8_0 = ref::matmul_q8_0,
    .rows_q4_0 = ref::matmul_q4_0,
    .rows_q4_1 = ref::matmul_q4_1,
    .rows_q5_0 = ref::matmul_q5_0,
    .rows_q5_1 = ref::matmul_q5_1,
    .rows_q2_k = ref::matmul_q2_k,
    .rows_q3_k = ref::matmul_q3_k,
    .rows_q4_k = ref::matmul_q4_k,
    .rows_q5_k = ref::matmul_q5_k,
    .rows_q6_k = ref::matmul_q6_k,
    .wkv7_step = ref::wkv7_step,
    .wkv5_step = ref::wkv5_step,
    .name = "ref",
};
const Table kAvx2{
    .matmul_f32 = avx2::matmul_f32,
    .matmul_bf16 = avx2::matmul_bf16,
    .rows_f32 = avx2::rows_f32,
    .rows_bf16 = avx2::rows_bf16,
    .rows_f16 = avx2::rows_f16,
    .rows_q8_0 = avx2::rows_q8_0,
    .rows_q4_0 = avx2::rows_q4_0,
    .rows_q4_1 = avx2::rows_q4_1,
    .rows_q5_0 = avx2::rows_q5_0,
    .rows_q5_1 = avx2::rows_q5_1,
    .rows_q2_k = avx2::rows_q2_k,
    .rows_q3_k = avx2::rows_q3_k,
    .rows_q4_k = avx2::rows_q4_k,
    .rows_q5_k = avx2::rows_q5_k,
    .rows_q6_k = avx2::rows_q6_k,
    .wkv7_step = avx2::wkv7_step,
    .wkv5_step = avx2::wkv5_step,
    .name = "avx2",
};

bool cpu_has_avx2() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c;
}
}  // namespace

MatmulRows Table::rows_for(DType t) const {
  switch (t) {
    case DType::f32: return rows_f32;
    case DType::bf16: return rows_bf16;
    case DType::f16: return rows_f16;
    case DType::q8_0: return rows_q8_0;
    case DType::q4_0: return rows_q4_0;
    case DType::q4_1: return rows_q4_1;
    case DType::q5_0: return rows_q5_0;
    case DType::q5_1: return rows_q5_1;
    case DType::q2_k: return rows_q2_k;
    case DType::q3_k: return rows_q3_k;
    case DType::q4_k: return rows_q4_k;
    case DType::q5_k: return rows_q5_k;
    case DType::q6_k: return rows_q6_k;
    default: return nullptr;
  }
}

bool matmul_supports(DType t) { return kRef.rows_for(t) != nullptr; }

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

void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
               const float* a, const float* b, float* y, size_t H, size_t N) {
  table().wkv7_step(S, r, w, k, v, a, b, y, H, N);
}

void wkv5_step(float* S, const float* r, const float* w, const float* u, const float* k,
               const float* v, float* y, size_t H, size_t N) {
  table().wkv5_step(S, r, w, u, k, v, y, H, N);
}

// ---- threads ----

namespace {
std::mutex g_pool_mu;  // held while a matmul uses the pool; others run on their own thread
std::unique_ptr<ThreadPool> g_pool;
size_t g_threads = 0;  // 0: not chosen yet (all available cores)

// Default thread count: $WKV_THREADS if set (tests run the goldens at several counts), else
// every core available to the process.
size_t default_threads() {
  if (const char* e = std::getenv("WKV_THREADS")) {
    const long n = std::strtol(e, nullptr, 10);
    if (n > 0 && n <= 1024) return static_cast<size_t>(n);
  }
  return available_cores();
}

ThreadPool& pool_locked() {
  if (!g_pool) {
    if (g_threads == 0) g_threads = default_threads();
    g_pool = std::make_unique<ThreadPool>(g_threads);
  }
  return *g_pool;
}

// Rows per task are a multiple of this, so the row blocking inside kernels is the same
// whatever the split (kernels compute each element the same way anyway).
constexpr size_t kRowAlign = 16;
// Below this many multiply-adds a product runs on the calling thread alone.
constexpr size_t kMinParallelMacs = size_t{1} << 16;
}  // namespace

void set_threads(size_t n) {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  const size_t want = n == 0 ? default_threads() : n;
  if (g_pool && g_pool->threads() == want) return;
  g_pool.reset();
  g_threads = want;
}

size_t threads() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  return g_threads == 0 ? default_threads() : g_threads;
}

void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  std::unique_lock<std::mutex> lock(g_pool_mu, std::try_to_lock);
  if (n == 1 || !lock.owns_lock()) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  pool_locked().run(n, [&fn](size_t i) { fn(i); });
}

void matmul(DType wt, const void* W, const float* X, float* Y, size_t rows, size_t cols,
            size_t T) {
  const MatmulRows fn = table().rows_for(wt);
  WKV_ASSERT(fn != nullptr);
  if (rows * cols * T < kMinParallelMacs || rows < 2 * kRowAlign) {
    fn(W, X, Y, rows, cols, T, 0, rows);
    return;
  }
  std::unique_lock<std::mutex> lock(g_pool_mu, std::try_to_lock);
  if (!lock.owns_lock()) {  // another thread's product holds the pool
    fn(W, X, Y, rows, cols, T, 0, rows);
    return;
  }
  ThreadPool& pool = pool_locked();
  const size_t nt = pool.threads();
  if (nt == 1) {
    fn(W, X, Y, rows, cols, T, 0, rows);
    return;
  }
  // About 4 tasks per thread (so a descheduled worker costs little), each a multiple of
  // kRowAlign rows.
  const size_t blocks = (rows + kRowAlign - 1) / kRowAlign;
  const size_t tasks = std::min(blocks, nt * 4);
  const size_t per = (blocks + tasks - 1) / tasks * kRowAlign;
  const size_t n = (rows + per - 1) / per;
  pool.run(n, [&](size_t i) {
    const size_t r0 = i * per, r1 = std::min(rows, r0 + per);
    fn(W, X, Y, rows, cols, T, r0, r1);
  });
}

}  // namespace wkv::kernels
