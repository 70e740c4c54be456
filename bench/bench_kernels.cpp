// Matrix-vector / matrix-matrix throughput of each kernel table for every weight dtype at
// RWKV-7 sizes (one thread, the row-range kernels the model uses), reported as GB/s of weights
// (generation is bandwidth-bound) and GFLOP/s (prompts are compute-bound); plus the WKV-7 step.
//   build/bench/bench_kernels --benchmark_filter='q4_0' --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/quant.hpp"
#include "kernels/kernels.hpp"

namespace {

using wkv::DType;
using wkv::kernels::Table;

std::vector<unsigned char> make_weights(DType dt, size_t rows, size_t cols) {
  std::mt19937 g(1);
  std::normal_distribution<float> d;
  std::vector<float> w(cols);
  std::vector<unsigned char> out(wkv::dtype_bytes(dt, cols) * rows);
  for (size_t r = 0; r < rows; ++r) {
    for (auto& v : w) v = d(g);
    unsigned char* dst = out.data() + r * wkv::dtype_bytes(dt, cols);
    if (dt == DType::f32) {
      std::memcpy(dst, w.data(), cols * 4);
    } else if (dt == DType::bf16 || dt == DType::f16) {
      for (size_t i = 0; i < cols; ++i) {
        const uint16_t h = dt == DType::bf16 ? wkv::f32_to_bf16(w[i]) : wkv::f32_to_f16(w[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    } else {
      wkv::quant::quantize_row(dt, w.data(), dst, cols);
    }
  }
  return out;
}

void run(benchmark::State& state, const Table* t, DType dt) {
  if (!t) {
    state.SkipWithError("kernel table not available on this CPU");
    return;
  }
  // Args {rows, T, cols}; cols 0 means a square matrix. {65536, 1, 768} is the head's shape,
  // out of cache: weights streamed from DRAM, as in generation with a real model. {768, 64,
  // 3072} is a 12 x 768 model's FFN output over a prompt chunk, the prompt tiles' weakest shape.
  const size_t rows = static_cast<size_t>(state.range(0)), T = static_cast<size_t>(state.range(1));
  const size_t cols = state.range(2) > 0 ? static_cast<size_t>(state.range(2)) : rows;
  const auto W = make_weights(dt, rows, cols);
  std::mt19937 g(2);
  std::normal_distribution<float> d;
  std::vector<float> X(T * cols), Y(T * rows);
  for (auto& v : X) v = d(g);
  const auto fn = t->rows_for(dt);
  for (auto _ : state) {
    fn(W.data(), X.data(), Y.data(), rows, cols, T, 0, rows);
    benchmark::DoNotOptimize(Y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * W.size()));
  state.counters["GFLOP/s"] = benchmark::Counter(
      static_cast<double>(2 * rows * cols * T) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void wkv7(benchmark::State& state, const Table* t) {
  if (!t) {
    state.SkipWithError("kernel table not available on this CPU");
    return;
  }
  const size_t H = 12, N = 64, C = H * N;
  std::vector<float> S(H * N * N, 0.01f), r(C, 0.5f), w(C, 0.9f), k(C, 0.1f), v(C, 0.2f),
      a(C, -0.1f), b(C, 0.05f), y(C);
  for (auto _ : state) {
    t->wkv7_step(S.data(), r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), y.data(), H,
                 N);
    benchmark::DoNotOptimize(y.data());
  }
}

const struct {
  const char* name;
  DType dt;
} kTypes[] = {{"f32", DType::f32},   {"bf16", DType::bf16}, {"f16", DType::f16},
              {"q8_0", DType::q8_0}, {"q4_0", DType::q4_0}, {"q4_1", DType::q4_1},
              {"q5_0", DType::q5_0}, {"q5_1", DType::q5_1}, {"q2_k", DType::q2_k},
              {"q3_k", DType::q3_k}, {"q4_k", DType::q4_k}, {"q5_k", DType::q5_k},
              {"q6_k", DType::q6_k}};

int register_all() {
  for (const auto& ty : kTypes) {
    const std::pair<const char*, const Table*> levels[] = {
        {"ref", &wkv::kernels::ref_table()},
        {"avx2", wkv::kernels::avx2_table()},
        {"avx512", wkv::kernels::avx512_table()},
        {"avx512vnni", wkv::kernels::avx512vnni_table()},
        {"amx", wkv::kernels::amx_table()}};
    for (const auto& [level, t] : levels) {
      const DType dt = ty.dt;
      benchmark::RegisterBenchmark((std::string("matmul/") + level + "/" + ty.name).c_str(),
                                   [t, dt](benchmark::State& s) { run(s, t, dt); })
          ->Args({768, 1, 0})
          ->Args({768, 64, 0})
          ->Args({768, 64, 3072})
          ->Args({2048, 1, 0})
          ->Args({65536, 1, 768});
    }
  }
  benchmark::RegisterBenchmark("wkv7_step/ref/H12N64",
                               [](benchmark::State& s) { wkv7(s, &wkv::kernels::ref_table()); });
  benchmark::RegisterBenchmark("wkv7_step/avx2/H12N64",
                               [](benchmark::State& s) { wkv7(s, wkv::kernels::avx2_table()); });
  benchmark::RegisterBenchmark("wkv7_step/avx512/H12N64",
                               [](benchmark::State& s) { wkv7(s, wkv::kernels::avx512_table()); });
  return 0;
}
[[maybe_unused]] const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
