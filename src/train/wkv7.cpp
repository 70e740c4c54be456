// Chunked WKV-7 forward/backward (see wkv7.hpp for the recurrence and layouts).
#include "train/wkv7.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/kernels.hpp"

namespace wkv::train {

namespace {

// One step for one head: S [N,N] updated in place, sa [N] out, y [N] out (may be null).
template <class Real>
inline void step(Real* S, const Real* r, const Real* w, const Real* k, const Real* v, const Real* a,
                 const Real* b, Real* sa, Real* y, size_t N) {
  for (size_t i = 0; i < N; ++i) {
    Real* Si = S + i * N;
    Real s = 0;
    for (size_t j = 0; j < N; ++j) s += Si[j] * a[j];
    sa[i] = s;
    for (size_t j = 0; j < N; ++j) Si[j] = Si[j] * w[j] + s * b[j] + v[i] * k[j];
    if (y) {
      Real acc = 0;
      for (size_t j = 0; j < N; ++j) acc += Si[j] * r[j];
      y[i] = acc;
    }
  }
}

}  // namespace

template <class Real>
void wkv7_forward(const Wkv7Dims& d, const Real* r, const Real* w, const Real* k, const Real* v,
                  const Real* a, const Real* b, const Real* s0, Real* y, Real* states) {
  const size_t N = d.N, C = d.H * d.N, NN = N * N, nc = d.n_chunks();
  // Every (sequence, head) pair is independent: one task each on the kernels' thread pool.
  kernels::parallel_for(d.B * d.H, [&](size_t task) {
    const size_t bi = task / d.H, h = task % d.H;
    std::vector<Real> S(NN), sa(N);
    if (s0)
      std::memcpy(S.data(), s0 + h * NN, NN * sizeof(Real));
    else
      std::fill(S.begin(), S.end(), Real(0));
    Real* st = states + (bi * d.H + h) * nc * NN;
    for (size_t t = 0; t < d.T; ++t) {
      if (t % d.chunk == 0) std::memcpy(st + (t / d.chunk) * NN, S.data(), NN * sizeof(Real));
      const size_t o = (bi * d.T + t) * C + h * N;
      step(S.data(), r + o, w + o, k + o, v + o, a + o, b + o, sa.data(), y + o, N);
    }
  });
}

template <class Real>
void wkv7_backward(const Wkv7Dims& d, const Real* r, const Real* w, const Real* k, const Real* v,
                   const Real* a, const Real* b, const Real* states, const Real* dy, Real* dr,
                   Real* dw, Real* dk, Real* dv, Real* da, Real* db, Real* ds0) {
  const size_t N = d.N, C = d.H * d.N, NN = N * N, nc = d.n_chunks(), L = d.chunk;
  // One task per (sequence, head) on the kernels' thread pool; each writes only its own rows.
  // The initial-state gradients are kept per task and summed over the sequences afterwards in
  // sequence order, the order of a serial loop, so the result does not depend on threads.
  std::vector<Real> ds0_parts(ds0 ? d.B * d.H * NN : 0);
  kernels::parallel_for(d.B * d.H, [&](size_t task) {
    const size_t bi = task / d.H, h = task % d.H;
    std::vector<Real> Sk((L + 1) * NN), sak(L * N), dS(NN), dsa(N);
    {
      const Real* st = states + (bi * d.H + h) * nc * NN;
      for (size_t c = nc; c-- > 0;) {
        const size_t t0 = c * L, t1 = std::min(d.T, t0 + L);
        // Recompute the states before every token of the chunk, and sa.
        std::memcpy(Sk.data(), st + c * NN, NN * sizeof(Real));
        for (size_t t = t0; t < t1; ++t) {
          const size_t o = (bi * d.T + t) * C + h * N, q = t - t0;
          std::memcpy(Sk.data() + (q + 1) * NN, Sk.data() + q * NN, NN * sizeof(Real));
          step(Sk.data() + (q + 1) * NN, r + o, w + o, k + o, v + o, a + o, b + o,
               sak.data() + q * N, static_cast<Real*>(nullptr), N);
        }
        for (size_t t = t1; t-- > t0;) {
          const size_t o = (bi * d.T + t) * C + h * N, q = t - t0;
          const Real* Sp = Sk.data() + q * NN;        // S before token t
          const Real* Sn = Sk.data() + (q + 1) * NN;  // S after token t
          const Real* sa = sak.data() + q * N;
          const Real *rt = r + o, *wt = w + o, *kt = k + o, *vt = v + o, *at = a + o, *bt = b + o;
          const Real* dyt = dy + o;
          // y_i = sum_j S'_ij r_j: dr_j = sum_i S'_ij dy_i; dS'_ij += dy_i r_j
          for (size_t j = 0; j < N; ++j) dr[o + j] = 0;
          for (size_t i = 0; i < N; ++i)
            for (size_t j = 0; j < N; ++j) {
              dr[o + j] += Sn[i * N + j] * dyt[i];
              dS[i * N + j] += dyt[i] * rt[j];
            }
          // S'_ij = S_ij w_j + sa_i b_j + v_i k_j
          for (size_t j = 0; j < N; ++j) dw[o + j] = dk[o + j] = db[o + j] = da[o + j] = 0;
          for (size_t i = 0; i < N; ++i) {
            Real dvi = 0, dsai = 0;
            for (size_t j = 0; j < N; ++j) {
              const Real g = dS[i * N + j];
              dw[o + j] += g * Sp[i * N + j];
              dk[o + j] += g * vt[i];
              db[o + j] += g * sa[i];
              dvi += g * kt[j];
              dsai += g * bt[j];
            }
            dv[o + i] = dvi;
            dsa[i] = dsai;
          }
          // sa_i = sum_j S_ij a_j: da_j = sum_i dsa_i S_ij; dS_ij = dS'_ij w_j + dsa_i a_j
          for (size_t i = 0; i < N; ++i)
            for (size_t j = 0; j < N; ++j) {
              da[o + j] += dsa[i] * Sp[i * N + j];
              dS[i * N + j] = dS[i * N + j] * wt[j] + dsa[i] * at[j];
            }
        }
      }
      if (ds0) std::memcpy(ds0_parts.data() + task * NN, dS.data(), NN * sizeof(Real));
    }
  });
  if (ds0)
    for (size_t bi = 0; bi < d.B; ++bi)
      for (size_t h = 0; h < d.H; ++h)
        for (size_t x = 0; x < NN; ++x) ds0[h * NN + x] += ds0_parts[(bi * d.H + h) * NN + x];
}

#define WKV_INSTANTIATE(R)                                                                         \
  template void wkv7_forward<R>(const Wkv7Dims&, const R*, const R*, const R*, const R*, const R*, \
                                const R*, const R*, R*, R*);                                       \
  template void wkv7_backward<R>(const Wkv7Dims&, const R*, const R*, const R*, const R*,          \
                                 const R*, const R*, const R*, const R*, R*, R*, R*, R*, R*, R*,   \
                                 R*);
WKV_INSTANTIATE(float)
WKV_INSTANTIATE(double)
#undef WKV_INSTANTIATE

}  // namespace wkv::train
