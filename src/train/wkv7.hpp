// The RWKV-7 WKV recurrence for training: forward over [B, T] that keeps the state only at the
// start of every `chunk` tokens, and the exact backward, which recomputes the states inside a
// chunk forward from the stored one (no division by the decay, so no error growth).
// Per head, S is N x N with row = value index i, column = key index j (official layout):
//   sa_i = sum_j S_ij a_j;  S'_ij = S_ij w_j + sa_i b_j + v_i k_j;  y_i = sum_j S'_ij r_j
// (the model passes a = -kk, b = kk * a_iclr). Dims: B batch, T tokens, H heads, N head size.
#pragma once

#include <cstddef>
#include <vector>

namespace wkv::train {

struct Wkv7Dims {
  size_t B = 0, T = 0, H = 0, N = 0;
  size_t chunk = 16;  // tokens between stored states
  size_t n_chunks() const { return (T + chunk - 1) / chunk; }
  size_t state_floats() const { return B * H * n_chunks() * N * N; }
};

// Inputs r, w, k, v, a, b: [B, T, H*N]; w is the decay itself (in (0, 1)). s0: [H, N, N] initial
// state shared by the batch, or null for zero. Writes y [B, T, H*N] and `states`
// [B, H, n_chunks, N, N] (the state before tokens 0, chunk, 2·chunk, ...).
template <class Real>
void wkv7_forward(const Wkv7Dims& d, const Real* r, const Real* w, const Real* k, const Real* v,
                  const Real* a, const Real* b, const Real* s0, Real* y, Real* states);

// Given dy [B, T, H*N], assigns dr, dw, dk, dv, da, db [B, T, H*N] and, if ds0 is not null,
// adds the gradient w.r.t. s0 (summed over the batch) to ds0 [H, N, N].
template <class Real>
void wkv7_backward(const Wkv7Dims& d, const Real* r, const Real* w, const Real* k, const Real* v,
                   const Real* a, const Real* b, const Real* states, const Real* dy, Real* dr,
                   Real* dw, Real* dk, Real* dv, Real* da, Real* db, Real* ds0);

}  // namespace wkv::train
