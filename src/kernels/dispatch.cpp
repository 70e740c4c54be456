// The dispatch table: filled once from the CPU's features (scalar reference as the fallback),
// and the threaded matmul over it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <string_view>

#include "core/cpu_features.hpp"
#include "core/error.hpp"
#include "core/thread_pool.hpp"
#include "kernels/cpu/avx2.hpp"
#include "kernels/cpu/avx512.hpp"
#include "kernels/kernels.hpp"
#include "kernels/solo_chooser.hpp"

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
    .exp_f32 = ref::exp_f32,
    .sigmoid_f32 = ref::sigmoid_f32,
    .relu_sq_f32 = ref::relu_sq_f32,
    .layer_norm = ref::layer_norm,
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
    .exp_f32 = avx2::exp_f32,
    .sigmoid_f32 = avx2::sigmoid_f32,
    .relu_sq_f32 = avx2::relu_sq_f32,
    .layer_norm = avx2::layer_norm,
    .name = "avx2",
    .pack_x = [](DType, const float* X, size_t T, size_t cols) { return avx2::pack_x(X, T, cols); },
    .rows_packed = avx2::rows_packed,
    .packed_min_t = avx2::kOuterTokens,
};

#define WKV_WIDE_TABLE(ns, label)                                                               \
  Table {                                                                                       \
    .matmul_f32 = avx2::matmul_f32, .matmul_bf16 = avx2::matmul_bf16, .rows_f32 = ns::rows_f32, \
    .rows_bf16 = ns::rows_bf16, .rows_f16 = ns::rows_f16, .rows_q8_0 = ns::rows_q8_0,           \
    .rows_q4_0 = ns::rows_q4_0, .rows_q4_1 = ns::rows_q4_1, .rows_q5_0 = ns::rows_q5_0,         \
    .rows_q5_1 = ns::rows_q5_1, .rows_q2_k = ns::rows_q2_k, .rows_q3_k = ns::rows_q3_k,         \
    .rows_q4_k = ns::rows_q4_k, .rows_q5_k = ns::rows_q5_k, .rows_q6_k = ns::rows_q6_k,         \
    .wkv7_step = avx512::wkv7_step, .wkv5_step = avx2::wkv5_step, .exp_f32 = avx2::exp_f32,     \
    .sigmoid_f32 = avx2::sigmoid_f32, .relu_sq_f32 = avx2::relu_sq_f32,                         \
    .layer_norm = avx2::layer_norm, .name = label,                                              \
  }
const Table kAvx512 = [] {
  Table t = WKV_WIDE_TABLE(avx512, "avx512");
  t.pack_x = [](DType, const float* X, size_t T, size_t cols) {
    return avx512::pack_x(X, T, cols);
  };
  t.rows_packed = avx512::rows_packed;
  t.packed_min_t = avx512::kOuterTokens;
  return t;
}();
const Table kAvx512Vnni = [] {
  Table t = kAvx512;
  t.rows_q8_0 = avx512vnni::rows_q8_0;
  t.rows_q4_0 = avx512vnni::rows_q4_0;
  t.rows_q4_1 = avx512vnni::rows_q4_1;
  t.rows_q5_0 = avx512vnni::rows_q5_0;
  t.rows_q5_1 = avx512vnni::rows_q5_1;
  t.rows_q4_k = avx512vnni::rows_q4_k;
  t.rows_q5_k = avx512vnni::rows_q5_k;
  t.pack_x = avx512vnni::pack_x;
  t.rows_packed = avx512vnni::rows_packed;
  t.quantizes_x = avx512vnni::quantizes_x;
  t.rows_bf16 = avx512vnni::rows_bf16;
  t.rounds_x_bf16 = avx512vnni::rounds_x_bf16;
  t.name = "avx512vnni";
  return t;
}();
const Table kAmx = [] {
  Table t = WKV_WIDE_TABLE(amx, "amx");
  t.pack_x = [](DType, const float* X, size_t T, size_t cols) { return amx::pack_x(X, T, cols); };
  t.rows_packed = amx::rows_packed;
  t.packed_min_t = amx::kMinTokens;
  t.packed_split_bf16 = true;
  return t;
}();
#undef WKV_WIDE_TABLE

bool cpu_has_avx512() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl;
}

bool cpu_has_avx512vnni() { return cpu_has_avx512() && cpu_features().avx512vnni; }

bool cpu_has_avx2() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c;
}
}  // namespace

MatmulRows Table::rows_for(DType t) const {
  switch (t) {
    case DType::f32:
      return rows_f32;
    case DType::bf16:
      return rows_bf16;
    case DType::f16:
      return rows_f16;
    case DType::q8_0:
      return rows_q8_0;
    case DType::q4_0:
      return rows_q4_0;
    case DType::q4_1:
      return rows_q4_1;
    case DType::q5_0:
      return rows_q5_0;
    case DType::q5_1:
      return rows_q5_1;
    case DType::q2_k:
      return rows_q2_k;
    case DType::q3_k:
      return rows_q3_k;
    case DType::q4_k:
      return rows_q4_k;
    case DType::q5_k:
      return rows_q5_k;
    case DType::q6_k:
      return rows_q6_k;
    default:
      return nullptr;
  }
}

bool matmul_supports(DType t) { return kRef.rows_for(t) != nullptr; }

const Table& ref_table() { return kRef; }

const Table* avx2_table() { return cpu_has_avx2() ? &kAvx2 : nullptr; }
const Table* avx512_table() { return cpu_has_avx512() ? &kAvx512 : nullptr; }
const Table* avx512vnni_table() { return cpu_has_avx512vnni() ? &kAvx512Vnni : nullptr; }
const Table* amx_table() { return cpu_has_avx512() && amx::os_permits() ? &kAmx : nullptr; }

// The level used when WKV_KERNELS is unset. The avx512 and avx512vnni tables have passed the
// kernel tests and the model goldens on an AVX-512 (F/BW/DQ/VL/VNNI) Xeon and are faster there,
// so they are on by default; the amx table is built and tested against the reference wherever
// the CPU has AMX, but has not yet run on such a machine, so it is opt-in (WKV_KERNELS=amx).
constexpr const char* kDefaultCap = "avx512vnni";

const Table& table() {
  static const Table& chosen = []() -> const Table& {
    // Levels from the best down; WKV_KERNELS names the highest one allowed.
    const Table* (*const levels[])() = {amx_table, avx512vnni_table, avx512_table, avx2_table};
    const char* const names[] = {"amx", "avx512vnni", "avx512", "avx2"};
    const char* force = std::getenv("WKV_KERNELS");
    bool known = force && std::strcmp(force, "ref") == 0;
    for (const char* n : names) known = known || (force && std::strcmp(force, n) == 0);
    const char* cap = known ? force : kDefaultCap;  // unset or unknown: the default
    bool allowed = false;
    for (size_t i = 0; i < std::size(names); ++i) {
      if (std::strcmp(cap, names[i]) == 0) allowed = true;
      if (!allowed) continue;
      if (const Table* t = levels[i]()) return *t;
    }
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

void exp_f32(const float* x, float* y, size_t n) { table().exp_f32(x, y, n); }
void sigmoid_f32(const float* x, float* y, size_t n) { table().sigmoid_f32(x, y, n); }
void relu_sq_f32(const float* x, float* y, size_t n) { table().relu_sq_f32(x, y, n); }
void layer_norm(const float* x, const float* w, const float* b, float* y, size_t n, float eps) {
  table().layer_norm(x, w, b, y, n, eps);
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
// Below this many multiply-adds a product runs on the calling thread alone. At 2^16 the
// one-token LoRA products of a 12 x 768 RWKV-7 (768 x 64, 64 x 768, 768 x 32: 24-49 K) ran
// alone; in the pool 2-thread generation went 2-7 % faster (bench_ab, 5 runs).
constexpr size_t kMinParallelMacs = size_t{1} << 14;
SoloChooser g_one_token_chooser;  // guarded by g_pool_mu
}  // namespace

void set_threads(size_t n) {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  const size_t want = n == 0 ? default_threads() : n;
  if (g_pool && g_pool->threads() == want) return;
  g_pool.reset();
  g_threads = want;
  g_one_token_chooser = SoloChooser{};  // a new thread count is measured afresh
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

namespace {
// fn(r0, r1) over rows [0, rows) of a product of several tokens, split across the pool when
// the product is large enough (on the calling thread alone when it is small, the pool is busy
// with another caller's product, or there is one thread). One-token products go through
// matmul_batch.
template <class Fn>
void split_rows(size_t rows, size_t cols, size_t T, Fn&& fn) {
  if (rows * cols * T < kMinParallelMacs || rows < 2 * kRowAlign) {
    fn(size_t{0}, rows);
    return;
  }
  std::unique_lock<std::mutex> lock(g_pool_mu, std::try_to_lock);
  if (!lock.owns_lock()) {  // another thread's product holds the pool
    fn(size_t{0}, rows);
    return;
  }
  ThreadPool& pool = pool_locked();
  const size_t nt = pool.threads();
  if (nt == 1) {
    fn(size_t{0}, rows);
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
    fn(r0, r1);
  });
}
}  // namespace

namespace {
bool env_is_1(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr && std::string_view(e) == "1";
}
std::atomic<bool>& prompt_q8_flag() {
  static std::atomic<bool> on{env_is_1("WKV_PROMPT_Q8")};
  return on;
}
std::atomic<bool>& prompt_bf16_flag() {
  static std::atomic<bool> on{env_is_1("WKV_PROMPT_BF16")};
  return on;
}
}  // namespace

void set_prompt_q8(bool on) { prompt_q8_flag().store(on, std::memory_order_relaxed); }
bool prompt_q8() { return prompt_q8_flag().load(std::memory_order_relaxed); }
void set_prompt_bf16(bool on) { prompt_bf16_flag().store(on, std::memory_order_relaxed); }
bool prompt_bf16() { return prompt_bf16_flag().load(std::memory_order_relaxed); }

void matmul_batch(std::span<const MatmulJob> jobs, size_t T) {
  const Table& tab = table();
  if (T != 1 || jobs.size() > kMaxMatmulBatch || (tab.rows_packed && T >= tab.packed_min_t)) {
    for (const MatmulJob& j : jobs) matmul(j.wt, j.W, j.X, j.Y, j.rows, j.cols, T);
    return;
  }
  MatmulRows fns[kMaxMatmulBatch];
  double job_bytes[kMaxMatmulBatch];
  size_t macs = 0;
  double bytes = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    fns[i] = tab.rows_for(jobs[i].wt);
    WKV_ASSERT(fns[i] != nullptr);  // a dtype no kernel takes
    macs += jobs[i].rows * jobs[i].cols;
    job_bytes[i] = static_cast<double>(jobs[i].rows * dtype_bytes(jobs[i].wt, jobs[i].cols));
    bytes += job_bytes[i];
  }
  const auto all_solo = [&] {
    for (size_t i = 0; i < jobs.size(); ++i) {
      const MatmulJob& j = jobs[i];
      fns[i](j.W, j.X, j.Y, j.rows, j.cols, 1, 0, j.rows);
    }
  };
  if (macs < kMinParallelMacs) return all_solo();
  std::unique_lock<std::mutex> lock(g_pool_mu, std::try_to_lock);
  if (!lock.owns_lock()) return all_solo();  // another thread's product holds the pool
  ThreadPool& pool = pool_locked();
  const size_t nt = pool.threads();
  if (nt == 1) return all_solo();
  // Tasks of kRowAlign-multiple row ranges, about 4 per thread in all (so a descheduled worker
  // costs little), each product getting a share of them by its bytes of weights, at least one.
  struct Task {
    size_t job, r0, r1;
  };
  constexpr size_t kMaxTasks = 64;  // want + one rounded up per job at most
  const size_t want = std::min(nt * 4, kMaxTasks - kMaxMatmulBatch);
  Task tasks[kMaxTasks];
  size_t n = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const size_t rows = jobs[i].rows;
    if (rows == 0) continue;
    const size_t blocks = (rows + kRowAlign - 1) / kRowAlign;
    const double share = job_bytes[i] / bytes;
    const size_t k =
        std::clamp<size_t>(static_cast<size_t>(share * static_cast<double>(want) + 0.5), 1, blocks);
    const size_t per = (blocks + k - 1) / k * kRowAlign;
    for (size_t r0 = 0; r0 < rows; r0 += per) tasks[n++] = {i, r0, std::min(rows, r0 + per)};
  }
  if (n < 2) return all_solo();
  // Go solo while that measures faster (another process on a core).
  const auto start = std::chrono::steady_clock::now();
  if (g_one_token_chooser.solo()) {
    all_solo();
  } else {
    pool.run(n, [&](size_t t) {
      const Task& task = tasks[t];
      const MatmulJob& j = jobs[task.job];
      fns[task.job](j.W, j.X, j.Y, j.rows, j.cols, 1, task.r0, task.r1);
    });
  }
  g_one_token_chooser.record(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
      static_cast<double>(macs));
}

void matmul(DType wt, const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T) {
  const Table& tab = table();
  const MatmulRows fn = tab.rows_for(wt);
  WKV_ASSERT(fn != nullptr);  // a dtype no kernel takes, packed path included
  if (tab.rows_packed && T >= tab.packed_min_t) {
    const void* xp = tab.pack_x(wt, X, T, cols);
    split_rows(rows, cols, T,
               [&](size_t r0, size_t r1) { tab.rows_packed(wt, W, xp, Y, rows, cols, T, r0, r1); });
    return;
  }
  if (T == 1) {
    const MatmulJob job{wt, W, X, Y, rows, cols};
    return matmul_batch(std::span<const MatmulJob>(&job, 1), 1);
  }
  split_rows(rows, cols, T, [&](size_t r0, size_t r1) { fn(W, X, Y, rows, cols, T, r0, r1); });
}

}  // namespace wkv::kernels
