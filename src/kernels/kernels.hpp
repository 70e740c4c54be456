// Math on pointers and explicit dims, nothing else. Each kernel has a scalar reference in
// ref/ (the truth, always present) and may have SIMD versions in cpu/; the dispatch table is
// filled once at start-up from the CPU's features. Dims: T tokens, C channels, H heads,
// N head size; matrices are row-major [rows, cols] as PyTorch stores [out, in].
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>

#include "core/dtype.hpp"

namespace wkv::kernels {

// Y[t, o] = sum_i W[o, i] * X[t, i]   W: [rows, cols], X: [T, cols], Y: [T, rows]
using MatmulF32 = void (*)(const float* W, const float* X, float* Y, size_t rows, size_t cols,
                           size_t T);
// Same with bf16 weights (upcast on the fly; the raw 16-bit patterns).
using MatmulBF16 = void (*)(const unsigned short* W, const float* X, float* Y, size_t rows,
                            size_t cols, size_t T);
// Rows [r0, r1) of the same product for weights of any supported dtype: W points at row 0 of
// the whole [rows, cols] matrix (row o starts at dtype_bytes(dtype, cols) * o), Y is the whole
// [T, rows] output; only Y[t, r0..r1) is written. Quantized dtypes need cols to be a multiple
// of their block (32; 256 for the k-quants).
// Each output element is computed by the same code whatever the range, so splitting rows
// across threads gives bit-identical results.
using MatmulRows = void (*)(const void* W, const float* X, float* Y, size_t rows, size_t cols,
                            size_t T, size_t r0, size_t r1);
using Wkv7Step = void (*)(float* S, const float* r, const float* w, const float* k, const float* v,
                          const float* a, const float* b, float* y, size_t H, size_t N);
using Wkv5Step = void (*)(float* S, const float* r, const float* w, const float* u, const float* k,
                          const float* v, float* y, size_t H, size_t N);
using Elementwise = void (*)(const float* x, float* y, size_t n);
using LayerNorm = void (*)(const float* x, const float* w, const float* b, float* y, size_t n,
                           float eps);

struct Table {
  MatmulF32 matmul_f32;  // whole matrices (kept for callers outside the model)
  MatmulBF16 matmul_bf16;
  // Row-range kernels, one per weight dtype.
  MatmulRows rows_f32, rows_bf16, rows_f16, rows_q8_0, rows_q4_0, rows_q4_1, rows_q5_0, rows_q5_1,
      rows_q2_k, rows_q3_k, rows_q4_k, rows_q5_k, rows_q6_k;
  Wkv7Step wkv7_step;
  Wkv5Step wkv5_step;
  Elementwise exp_f32, sigmoid_f32, relu_sq_f32;
  LayerNorm layer_norm;
  const char* name;  // "ref", "avx2", "avx512", "amx"
  // Optional two-step form for products over at least packed_min_t tokens: X converted once
  // per product by pack_x (into the calling thread's buffer, read by all threads of that
  // product), then rows split across threads as with the row kernels. Null where absent.
  const void* (*pack_x)(DType t, const float* X, size_t T, size_t cols) = nullptr;
  void (*rows_packed)(DType t, const void* W, const void* xp, float* Y, size_t rows, size_t cols,
                      size_t T, size_t r0, size_t r1) = nullptr;
  size_t packed_min_t = 0;
  // Whether the row kernels from packed_min_t tokens (packed or not) round X and W to split
  // bf16 pairs (AMX) rather than computing in fp32.
  bool packed_split_bf16 = false;
  // Whether a product of quantized weights over T tokens quantizes X to q8 per block (as every
  // table does for T = 1); null: only for T = 1.
  bool (*quantizes_x)(DType t, size_t T) = nullptr;
  // Whether a product of bf16 weights over T tokens rounds X to bf16 (set_prompt_bf16, on a CPU
  // with AVX512-BF16); null: never.
  bool (*rounds_x_bf16)(DType t, size_t T) = nullptr;

  // The row-range kernel for weights of dtype `t`, or nullptr if there is none.
  MatmulRows rows_for(DType t) const;
};

// Weight dtypes the matmul kernels take (f32, bf16, f16 and every quantized type).
bool matmul_supports(DType t);

// The table for this CPU (chosen once): the best level it has at or below the cap, from
// amx > avx512 > avx2 > ref. WKV_KERNELS=ref|avx2|avx512|amx sets the cap; unset (or unknown)
// it is avx512, as the amx table has not yet run on such a CPU (dispatch.cpp).
const Table& table();
const Table& ref_table();
// SIMD tables compiled in and usable on this CPU, or nullptr (for tests against the reference).
const Table* avx2_table();
const Table* avx512_table();
const Table* avx512vnni_table();
const Table* amx_table();

namespace ref {
void matmul_f32(const float* W, const float* X, float* Y, size_t rows, size_t cols, size_t T);
void matmul_bf16(const unsigned short* W, const float* X, float* Y, size_t rows, size_t cols,
                 size_t T);
// Row-range references (fp32 accumulation; quantized blocks dequantized exactly, as
// quant::dequantize_row does, then summed in block order).
void matmul_f32_rows(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                     size_t r0, size_t r1);
void matmul_bf16_rows(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                      size_t r0, size_t r1);
void matmul_f16(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                size_t r0, size_t r1);
void matmul_q8_0(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q4_0(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q4_1(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q5_0(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q5_1(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q2_k(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q3_k(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q4_k(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q5_k(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void matmul_q6_k(const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T,
                 size_t r0, size_t r1);
void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
               const float* a, const float* b, float* y, size_t H, size_t N);
void wkv5_step(float* S, const float* r, const float* w, const float* u, const float* k,
               const float* v, float* y, size_t H, size_t N);
void exp_f32(const float* x, float* y, size_t n);
void sigmoid_f32(const float* x, float* y, size_t n);
void relu_sq_f32(const float* x, float* y, size_t n);
void layer_norm(const float* x, const float* w, const float* b, float* y, size_t n, float eps);
}  // namespace ref

// y = (x - mean) / sqrt(var + eps) * w + b over n channels (biased variance, as torch), through
// the dispatch table: mean and variance summed in double (the SIMD levels in four-lane partial
// sums, so they may differ from the reference's sequential sums in the last bit of a double),
// then y[i] = (x[i] - mean) * inv * w[i] + b[i] in fp32 without fused multiply-adds, as the
// reference does.
void layer_norm(const float* x, const float* w, const float* b, float* y, size_t n, float eps);
// y = exp(x) and y = 1 / (1 + exp(-x)) over n floats (y may be x), through the dispatch table.
// The SIMD versions are within 2 ulp of std::exp (results below FLT_MIN flush to 0; inf and
// NaN as std::exp); the sigmoid is 1 / (1 + that exp).
void exp_f32(const float* x, float* y, size_t n);
void sigmoid_f32(const float* x, float* y, size_t n);
// y = max(x, 0)^2 over n floats (y may be x), through the dispatch table; the same bits at
// every level (NaN stays NaN). The channel mix's activation: a plain loop of std::max compiles
// to a branch per value (GCC keeps the comparison's FP exception), mispredicted on half of them.
void relu_sq_f32(const float* x, float* y, size_t n);
// GroupNorm with H groups of N channels each, per-channel affine w, b.
void group_norm(const float* x, const float* w, const float* b, float* y, size_t H, size_t N,
                float eps);

// One RWKV-7 WKV step for all heads (through the dispatch table). S: [H, N(value i), N(key j)]
// updated in place:
//   sa_i = sum_j a_j S_ij;  S_ij = S_ij*w_j + k_j*v_i + sa_i*b_j;  y_i = sum_j S_ij r_j
// with a = -kk and b = kk*a_iclr as the official kernel names them.
void wkv7_step(float* S, const float* r, const float* w, const float* k, const float* v,
               const float* a, const float* b, float* y, size_t H, size_t N);

// One RWKV-4 WKV step over C channels, in the official max-exponent form that never
// overflows (state aa, bb scaled by exp(-pp); pp starts at -1e30). w = -exp(time_decay),
// u = time_first:
//   q = max(pp, u+k);  y = (e^(pp-q) aa + e^(u+k-q) v) / (e^(pp-q) bb + e^(u+k-q))
//   q' = max(pp+w, k); aa = e^(pp+w-q') aa + e^(k-q') v;  bb = e^(pp+w-q') bb + e^(k-q');  pp = q'
void wkv4_step(float* aa, float* bb, float* pp, const float* w, const float* u, const float* k,
               const float* v, float* y, size_t C);

// One RWKV-5/6 WKV step for all heads (through the dispatch table). S: [H, N(key i),
// N(value j)] updated in place (the official v5/v6 orientation, transposed w.r.t. wkv7_step);
// w, u per channel [H*N]:
//   y_j = sum_i r_i (u_i k_i v_j + S_ij);   S_ij = S_ij*w_i + k_i v_j
void wkv5_step(float* S, const float* r, const float* w, const float* u, const float* k,
               const float* v, float* y, size_t H, size_t N);

// Y[T, rows] = X[T, cols] * W^T for weights of dtype `wt` through the dispatch table, rows
// split across the thread pool when the product is large enough. Bit-identical for any
// thread count.
void matmul(DType wt, const void* W, const float* X, float* Y, size_t rows, size_t cols, size_t T);

// One product of a batch: Y[T, rows] = X[T, cols] * W^T, W of dtype wt.
struct MatmulJob {
  DType wt;
  const void* W;
  const float* X;
  float* Y;
  size_t rows, cols;
};
constexpr size_t kMaxMatmulBatch = 8;
// Independent products (no job's Y is another's X or Y) with the same bits as matmul on each
// in turn. One token's products are handed to the thread pool together, as one job whose tasks
// are row ranges of all of them: a 12 x 768 RWKV-7 layer has seven products of the same
// token-shifted inputs (r, k, v and four LoRA halves), mostly small, and one hand-off per
// product cost 2-thread generation more than the small ones gained from the second core.
// More than kMaxMatmulBatch jobs, or several tokens, run as matmul one after another.
void matmul_batch(std::span<const MatmulJob> jobs, size_t T);

// Prompts of quantized weights in integers (off by default): where the level has it (VNNI:
// q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k), products over 16 or more tokens quantize the
// tokens to q8 per 32 columns, as generation does, and sum each block in integers: 1.3-1.6x
// faster prompts, but no longer fp32 compute, so the logits leave the golden tolerance of
// the official reference (rwkv.cpp's Q5 files: 2.7e-3 to 0.65 against 2e-4). Starts from
// $WKV_PROMPT_Q8 (1 = on). Call it before running a model, not while one runs.
void set_prompt_q8(bool on);
bool prompt_q8();

// Prompts of bf16 weights in bf16 (off by default): on a CPU with AVX512-BF16 (the avx512vnni
// level), products of bf16 weights over 16 or more tokens round the tokens to bf16 (nearest
// even) and multiply with vdpbf16ps, fp32 sums: twice the fp32 rate where both issue two a
// cycle (AMD Zen 4/5), and the weights need no conversion. The tokens keep 8 significant bits
// (as in the official code's bf16 inference on GPUs), so the logits leave the fp32 golden
// tolerance. Starts from $WKV_PROMPT_BF16 (1 = on). Call it before running a model, not
// while one runs.
void set_prompt_bf16(bool on);
bool prompt_bf16();

// Threads used by matmul: 0 = $WKV_THREADS if set, else all cores available to the process.
// Call it before running a model, not while one runs. Results do not depend on it.
void set_threads(size_t n);
size_t threads();

// Calls fn(i) for every i in [0, n) on the matmul thread pool (on the calling thread alone when
// another caller holds the pool or there is one thread). fn must not depend on which thread or
// in which order it runs: callers write disjoint outputs, so results do not depend on threads.
void parallel_for(size_t n, const std::function<void(size_t)>& fn);

}  // namespace wkv::kernels
