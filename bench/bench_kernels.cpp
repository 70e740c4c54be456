// Matrix-vector / matrix-matrix throughput of each kernel table at RWKV-7 sizes, reported as
// GB/s of weights (generation is bandwidth-bound) and GFLOP/s (prompts are compute-bound).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/kernels.hpp"

namespace {

using wkv::kernels::Table;

void run(benchmark::State& state, const Table* t, bool bf16) {
  if (!t) {
    state.SkipWithError("kernel table not available on this CPU");
    return;
  }
  const size_t rows = static_cast<size_t>(state.range(0)), cols = rows;
  const size_t T = static_cast<size_t>(state.range(1));
  std::mt19937 g(1);
  std::normal_distribution<float> d;
  std::vector<float> W(rows * cols), X(T * cols), Y(T * rows);
  for (auto& v : W) v = d(g);
  for (auto& v : X) v = d(g);
  std::vector<unsigned short> Wb(W.size());
  for (size_t i = 0; i < W.size(); ++i) Wb[i] = static_cast<unsigned short>(0x3f80 + (i & 0x3f));
  for (auto _ : state) {
    if (bf16)
      t->matmul_bf16(Wb.data(), X.data(), Y.data(), rows, cols, T);
    else
      t->matmul_f32(W.data(), X.data(), Y.data(), rows, cols, T);
    benchmark::DoNotOptimize(Y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * rows * cols * (bf16 ? 2 : 4)));
  state.counters["GFLOP/s"] = benchmark::Counter(
      static_cast<double>(2 * rows * cols * T) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_ref_f32(benchmark::State& s) { run(s, &wkv::kernels::ref_table(), false); }
void BM_avx2_f32(benchmark::State& s) { run(s, wkv::kernels::avx2_table(), false); }
void BM_ref_bf16(benchmark::State& s) { run(s, &wkv::kernels::ref_table(), true); }
void BM_avx2_bf16(benchmark::State& s) { run(s, wkv::kernels::avx2_table(), true); }

#define SIZES ->Args({768, 1})->Args({768, 64})->Args({2048, 1})
BENCHMARK(BM_ref_f32) SIZES;
BENCHMARK(BM_avx2_f32) SIZES;
BENCHMARK(BM_ref_bf16) SIZES;
BENCHMARK(BM_avx2_bf16) SIZES;

}  // namespace

BENCHMARK_MAIN();
