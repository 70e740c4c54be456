// RWKV-7 training forward and explicit backward (see rwkv7.hpp). Activation gradients are
// assigned, parameter gradients accumulated with +=.
#include "train/rwkv7.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "train/ops.hpp"
#include "train/wkv7.hpp"

namespace wkv::train {

namespace {

constexpr double kDecayScale =
    -0.6065306597126334;  // -exp(-0.5): decay = exp(kDecayScale·σ(w_raw))

template <class Real>
using Vec = std::vector<Real>;

using ops::mm_nn;
using ops::mm_nt;
using ops::mm_tn_acc;
using ops::sigmoid;

}  // namespace

template <class Real>
struct Rwkv7Trainer<Real>::Acts {
  size_t B = 0, T = 0, M = 0;
  std::vector<int32_t> tokens;   // [M]
  Vec<Real> ln0_xhat, ln0_rstd;  // [M,C] [M]
  struct Layer {
    // time mix
    Vec<Real> xhat1, rstd1, u;             // ln1: [M,C] [M] [M,C]
    Vec<Real> xr, xw, xk, xv, xa, xg;      // [M,C] mixed inputs
    Vec<Real> r, k0, vraw;                 // [M,C] linear outputs
    Vec<Real> hw, sw, w;                   // [M,Dw] tanh; [M,C] σ(w_raw), decay
    Vec<Real> ha, a;                       // [M,Da]; [M,C]
    Vec<Real> hg, g;                       // [M,Dg] σ; [M,C]
    Vec<Real> hv, gate, v;                 // [M,Dv]; [M,C] residual gate, final v
    Vec<Real> knorm, kk, k, ain, bin;      // [M,H]; [M,C] ...
    Vec<Real> states, y;                   // WKV chunk states; [M,C] WKV output
    Vec<Real> gxhat, grstd, bonus, z, zg;  // [M,C] [M,H] [M,H] [M,C] [M,C]
    // channel mix
    Vec<Real> xhat2, rstd2, u2, xk2, hk, hr;  // [M,C] [M] [M,C] [M,C] [M,F] [M,F]
  };
  std::vector<Layer> L;
  Vec<Real> vfirst;                  // [M,C]
  Vec<Real> xhat_out, rstd_out, xo;  // [M,C] [M] [M,C]
};

template <class Real>
void Rwkv7Trainer<Real>::forward(const Params<Real>& p, const int32_t* tokens, size_t B, size_t T,
                                 const LayerStates<Real>* s0, Real* logits) {
  const Dims& d = p.d;
  const size_t C = d.C, H = d.H, N = d.N, V = d.V, F = d.F, M = B * T;
  const size_t Dw = d.Dw, Da = d.Da, Dv = d.Dv, Dg = d.Dg;
  acts_ = std::make_shared<Acts>();
  Acts& A = *acts_;
  A.B = B, A.T = T, A.M = M;
  A.tokens.assign(tokens, tokens + M);
  A.L.resize(d.L);

  Vec<Real> x(M * C), tmp(M * C);
  for (size_t m = 0; m < M; ++m) {
    WKV_ASSERT(tokens[m] >= 0 && size_t(tokens[m]) < V);
    std::memcpy(&x[m * C], &p.emb.data[size_t(tokens[m]) * C], C * sizeof(Real));
  }
  // layer 0: x = ln0(emb)
  A.ln0_xhat.resize(M * C);
  A.ln0_rstd.resize(M);
  const auto& l0 = p.layers[0];
  for (size_t m = 0; m < M; ++m)
    ops::norm_forward(&x[m * C], l0.ln0_w.data.data(), l0.ln0_b.data.data(), &x[m * C],
                      &A.ln0_xhat[m * C], &A.ln0_rstd[m], 1, C, kLayerNormEps);
  A.vfirst.resize(M * C);
  Wkv7Dims wd{B, T, H, N, chunk_};

  for (size_t li = 0; li < size_t(d.L); ++li) {
    const auto& P = p.layers[li];
    auto& La = A.L[li];
    for (auto* v :
         {&La.xhat1, &La.u,  &La.xr,    &La.xw, &La.xk, &La.xv,    &La.xa, &La.xg, &La.r, &La.k0,
          &La.vraw,  &La.sw, &La.w,     &La.a,  &La.g,  &La.gate,  &La.v,  &La.kk, &La.k, &La.ain,
          &La.bin,   &La.y,  &La.gxhat, &La.z,  &La.zg, &La.xhat2, &La.u2, &La.xk2})
      v->resize(M * C);
    La.rstd1.resize(M);
    La.rstd2.resize(M);
    La.knorm.resize(M * H);
    La.grstd.resize(M * H);
    La.bonus.resize(M * H);
    La.hw.resize(M * Dw);
    La.ha.resize(M * Da);
    La.hg.resize(M * Dg);
    La.hk.resize(M * F);
    La.hr.resize(M * F);
    La.states.resize(wd.state_floats());

    // ---- time mix: u = ln1(x); x_* = u + (shift(u) − u) ⊙ mix_*
    for (size_t m = 0; m < M; ++m)
      ops::norm_forward(&x[m * C], P.ln1_w.data.data(), P.ln1_b.data.data(), &La.u[m * C],
                        &La.xhat1[m * C], &La.rstd1[m], 1, C, kLayerNormEps);
    for (size_t m = 0; m < M; ++m) {
      const bool first = m % T == 0;
      for (size_t c = 0; c < C; ++c) {
        const size_t o = m * C + c;
        const Real cur = La.u[o], dd = (first ? Real(0) : La.u[o - C]) - cur;
        La.xr[o] = cur + dd * P.x_r.data[c];
        La.xw[o] = cur + dd * P.x_w.data[c];
        La.xk[o] = cur + dd * P.x_k.data[c];
        La.xv[o] = cur + dd * P.x_v.data[c];
        La.xa[o] = cur + dd * P.x_a.data[c];
        La.xg[o] = cur + dd * P.x_g.data[c];
      }
    }
    mm_nt(La.xr.data(), P.Wr.data.data(), La.r.data(), M, C, C);
    mm_nt(La.xk.data(), P.Wk.data.data(), La.k0.data(), M, C, C);
    mm_nt(La.xv.data(), P.Wv.data.data(), La.vraw.data(), M, C, C);
    // w_raw = w0 + tanh(x_w w1) w2;
    // decay = exp(−e^−0.5 σ(w_raw)) = exp(−exp(−softplus(−w_raw) − 0.5))
    mm_nn(La.xw.data(), P.w1.data.data(), La.hw.data(), M, C, Dw);
    for (auto& h : La.hw) h = std::tanh(h);
    mm_nn(La.hw.data(), P.w2.data.data(), tmp.data(), M, Dw, C);
    for (size_t i = 0; i < M * C; ++i) {
      La.sw[i] = sigmoid(P.w0.data[i % C] + tmp[i]);
      La.w[i] = std::exp(Real(kDecayScale) * La.sw[i]);
    }
    // a = σ(a0 + (x_a a1) a2)
    mm_nn(La.xa.data(), P.a1.data.data(), La.ha.data(), M, C, Da);
    mm_nn(La.ha.data(), P.a2.data.data(), tmp.data(), M, Da, C);
    for (size_t i = 0; i < M * C; ++i) La.a[i] = sigmoid(P.a0.data[i % C] + tmp[i]);
    // g = σ(x_g g1) g2
    mm_nn(La.xg.data(), P.g1.data.data(), La.hg.data(), M, C, Dg);
    for (auto& h : La.hg) h = sigmoid(h);
    mm_nn(La.hg.data(), P.g2.data.data(), La.g.data(), M, Dg, C);
    // layer 0: v_first = v; else v += (v_first − v) ⊙ σ(v0 + (x_v v1) v2)
    if (li == 0) {
      La.v = La.vraw;
      A.vfirst = La.v;
    } else {
      La.hv.resize(M * Dv);
      mm_nn(La.xv.data(), P.v1.data.data(), La.hv.data(), M, C, Dv);
      mm_nn(La.hv.data(), P.v2.data.data(), tmp.data(), M, Dv, C);
      for (size_t i = 0; i < M * C; ++i) {
        La.gate[i] = sigmoid(P.v0.data[i % C] + tmp[i]);
        La.v[i] = La.vraw[i] + (A.vfirst[i] - La.vraw[i]) * La.gate[i];
      }
    }
    // kk = normalize(k ⊙ k_k) per head; k = k ⊙ (1 + (a − 1) ⊙ k_a)
    for (size_t m = 0; m < M; ++m)
      for (size_t h = 0; h < H; ++h) {
        double ss = 0;
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j;
          const double pj = double(La.k0[o]) * P.k_k.data[h * N + j];
          ss += pj * pj;
        }
        const double nrm = std::sqrt(ss);
        La.knorm[m * H + h] = Real(nrm);
        const double inv = 1.0 / std::max(nrm, kL2NormEps);
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j;
          La.kk[o] = Real(double(La.k0[o]) * P.k_k.data[h * N + j] * inv);
        }
      }
    for (size_t i = 0; i < M * C; ++i) {
      const size_t c = i % C;
      La.k[i] = La.k0[i] * (Real(1) + (La.a[i] - Real(1)) * P.k_a.data[c]);
      La.ain[i] = -La.kk[i];
      La.bin[i] = La.kk[i] * La.a[i];
    }
    const Real* s0l = s0 && li < s0->size() && !(*s0)[li].empty() ? (*s0)[li].data() : nullptr;
    wkv7_forward(wd, La.r.data(), La.w.data(), La.k.data(), La.v.data(), La.ain.data(),
                 La.bin.data(), s0l, La.y.data(), La.states.data());
    // z = GroupNorm(y) + (Σ_j r_j k_j r_k[h,j]) v per head; out = (z ⊙ g) Woᵀ
    for (size_t m = 0; m < M; ++m)
      ops::norm_forward(&La.y[m * C], P.lnx_w.data.data(), P.lnx_b.data.data(), &La.z[m * C],
                        &La.gxhat[m * C], &La.grstd[m * H], H, N, kGroupNormEps);
    for (size_t m = 0; m < M; ++m)
      for (size_t h = 0; h < H; ++h) {
        Real s = 0;
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j;
          s += La.r[o] * La.k[o] * P.r_k.data[h * N + j];
        }
        La.bonus[m * H + h] = s;
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j;
          La.z[o] += s * La.v[o];
        }
      }
    for (size_t i = 0; i < M * C; ++i) La.zg[i] = La.z[i] * La.g[i];
    mm_nt(La.zg.data(), P.Wo.data.data(), tmp.data(), M, C, C);
    for (size_t i = 0; i < M * C; ++i) x[i] += tmp[i];

    // ---- channel mix: u2 = ln2(x); out = relu((u2 + (shift(u2) − u2) ⊙ x_k) Wkeyᵀ)² Wvalueᵀ
    for (size_t m = 0; m < M; ++m)
      ops::norm_forward(&x[m * C], P.ln2_w.data.data(), P.ln2_b.data.data(), &La.u2[m * C],
                        &La.xhat2[m * C], &La.rstd2[m], 1, C, kLayerNormEps);
    for (size_t m = 0; m < M; ++m) {
      const bool first = m % T == 0;
      for (size_t c = 0; c < C; ++c) {
        const size_t o = m * C + c;
        const Real cur = La.u2[o], dd = (first ? Real(0) : La.u2[o - C]) - cur;
        La.xk2[o] = cur + dd * P.ffn_x_k.data[c];
      }
    }
    mm_nt(La.xk2.data(), P.ffn_key.data.data(), La.hk.data(), M, C, F);
    for (size_t i = 0; i < M * F; ++i) {
      const Real h = std::max(La.hk[i], Real(0));
      La.hr[i] = h * h;
    }
    mm_nt(La.hr.data(), P.ffn_value.data.data(), tmp.data(), M, F, C);
    for (size_t i = 0; i < M * C; ++i) x[i] += tmp[i];
  }

  A.xhat_out.resize(M * C);
  A.rstd_out.resize(M);
  A.xo.resize(M * C);
  for (size_t m = 0; m < M; ++m)
    ops::norm_forward(&x[m * C], p.ln_out_w.data.data(), p.ln_out_b.data.data(), &A.xo[m * C],
                      &A.xhat_out[m * C], &A.rstd_out[m], 1, C, kLayerNormEps);
  mm_nt(A.xo.data(), p.head.data.data(), logits, M, C, V);
}

template <class Real>
void Rwkv7Trainer<Real>::backward(const Params<Real>& p, const Real* dlogits, Grads<Real>& g,
                                  LayerStates<Real>* ds0) {
  WKV_ASSERT(acts_ != nullptr);
  const Acts& A = *acts_;
  const Dims& d = p.d;
  const size_t C = d.C, H = d.H, N = d.N, V = d.V, F = d.F, M = A.M, T = A.T;
  const size_t Dw = d.Dw, Da = d.Da, Dv = d.Dv, Dg = d.Dg;
  const size_t D = std::max({Dw, Da, Dv, Dg});
  Wkv7Dims wd{A.B, T, H, N, chunk_};
  if (ds0) {
    ds0->resize(d.L);
    for (auto& s : *ds0) s.resize(H * N * N, Real(0));
  }

  Vec<Real> dx(M * C), t1(M * C), t2(M * C), du(M * C), dhid(M * D), dhid2(M * D), dF(M * F);
  // logits = xo headᵀ
  mm_tn_acc(dlogits, A.xo.data(), g.head.data.data(), M, V, C);
  mm_nn(dlogits, p.head.data.data(), t1.data(), M, V, C);
  for (size_t m = 0; m < M; ++m)
    ops::norm_backward(&t1[m * C], &A.xhat_out[m * C], &A.rstd_out[m], p.ln_out_w.data.data(),
                       &dx[m * C], g.ln_out_w.data.data(), g.ln_out_b.data.data(), 1, C, false);

  Vec<Real> dvfirst(M * C, Real(0));
  Vec<Real> dr(M * C), dw(M * C), dk(M * C), dv(M * C), da(M * C), db(M * C), dz(M * C), dg(M * C),
      dr_b(M * C), dk_b(M * C), dv_b(M * C), dkk(M * C), dk0(M * C), dx_mix(6 * M * C);

  for (size_t li = size_t(d.L); li-- > 0;) {
    const auto& P = p.layers[li];
    auto& G = g.layers[li];
    const auto& La = A.L[li];

    // ---- channel mix backward (dx is the gradient of its output)
    mm_tn_acc(dx.data(), La.hr.data(), G.ffn_value.data.data(), M, C, F);
    mm_nn(dx.data(), P.ffn_value.data.data(), dF.data(), M, C, F);
    for (size_t i = 0; i < M * F; ++i) dF[i] *= La.hk[i] > 0 ? Real(2) * La.hk[i] : Real(0);
    mm_tn_acc(dF.data(), La.xk2.data(), G.ffn_key.data.data(), M, F, C);
    mm_nn(dF.data(), P.ffn_key.data.data(), t1.data(), M, F, C);  // d xk2
    std::fill(du.begin(), du.end(), Real(0));
    for (size_t m = 0; m < M; ++m) {
      const bool first = m % T == 0;
      for (size_t c = 0; c < C; ++c) {
        const size_t o = m * C + c;
        const Real mix = P.ffn_x_k.data[c], prev = first ? Real(0) : La.u2[o - C];
        G.ffn_x_k.data[c] += t1[o] * (prev - La.u2[o]);
        du[o] += t1[o] * (Real(1) - mix);
        if (!first) du[o - C] += t1[o] * mix;
      }
    }
    for (size_t m = 0; m < M; ++m)
      ops::norm_backward(&du[m * C], &La.xhat2[m * C], &La.rstd2[m], P.ln2_w.data.data(),
                         &dx[m * C], G.ln2_w.data.data(), G.ln2_b.data.data(), 1, C, true);

    // ---- time mix backward: out = zg Woᵀ, zg = z ⊙ g
    mm_tn_acc(dx.data(), La.zg.data(), G.Wo.data.data(), M, C, C);
    mm_nn(dx.data(), P.Wo.data.data(), t1.data(), M, C, C);  // d zg
    for (size_t i = 0; i < M * C; ++i) {
      dz[i] = t1[i] * La.g[i];
      dg[i] = t1[i] * La.z[i];
    }
    // bonus: z += s_h v, s_h = Σ_j r_j k_j r_k[h,j]
    for (size_t m = 0; m < M; ++m)
      for (size_t h = 0; h < H; ++h) {
        Real ds = 0;
        const Real s = La.bonus[m * H + h];
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j;
          ds += dz[o] * La.v[o];
          dv_b[o] = dz[o] * s;
        }
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j, c = h * N + j;
          dr_b[o] = ds * La.k[o] * P.r_k.data[c];
          dk_b[o] = ds * La.r[o] * P.r_k.data[c];
          G.r_k.data[c] += ds * La.r[o] * La.k[o];
        }
      }
    // GroupNorm: d y (WKV output) into t2
    for (size_t m = 0; m < M; ++m)
      ops::norm_backward(&dz[m * C], &La.gxhat[m * C], &La.grstd[m * H], P.lnx_w.data.data(),
                         &t2[m * C], G.lnx_w.data.data(), G.lnx_b.data.data(), H, N, false);
    wkv7_backward(wd, La.r.data(), La.w.data(), La.k.data(), La.v.data(), La.ain.data(),
                  La.bin.data(), La.states.data(), t2.data(), dr.data(), dw.data(), dk.data(),
                  dv.data(), da.data(), db.data(), ds0 ? (*ds0)[li].data() : nullptr);
    // a_in = −kk, b_in = kk ⊙ a; k = k0 ⊙ (1 + (a − 1) ⊙ k_a)
    for (size_t i = 0; i < M * C; ++i) {
      const size_t c = i % C;
      dr[i] += dr_b[i];
      dk[i] += dk_b[i];
      dv[i] += dv_b[i];
      dkk[i] = -da[i] + db[i] * La.a[i];
      da[i] = db[i] * La.kk[i] + dk[i] * La.k0[i] * P.k_a.data[c];
      G.k_a.data[c] += dk[i] * La.k0[i] * (La.a[i] - Real(1));
      dk0[i] = dk[i] * (Real(1) + (La.a[i] - Real(1)) * P.k_a.data[c]);
    }
    // kk = p / max(‖p‖, eps), p = k0 ⊙ k_k: dp = (dkk − kk (dkk·kk)) / ‖p‖
    for (size_t m = 0; m < M; ++m)
      for (size_t h = 0; h < H; ++h) {
        const double nrm = La.knorm[m * H + h];
        double dot = 0;
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j;
          dot += double(dkk[o]) * La.kk[o];
        }
        for (size_t j = 0; j < N; ++j) {
          const size_t o = m * C + h * N + j, c = h * N + j;
          const double dp =
              nrm > kL2NormEps ? (dkk[o] - La.kk[o] * dot) / nrm : double(dkk[o]) / kL2NormEps;
          dk0[o] += Real(dp * P.k_k.data[c]);
          G.k_k.data[c] += Real(dp * La.k0[o]);
        }
      }
    // value: layer 0 collects v_first's gradient from all later layers
    Real* dxv_extra = nullptr;
    if (li == 0) {
      for (size_t i = 0; i < M * C; ++i) dv[i] += dvfirst[i];
    } else {
      for (size_t i = 0; i < M * C; ++i) {
        const Real gt = La.gate[i];
        const Real dgp = dv[i] * (A.vfirst[i] - La.vraw[i]) * gt * (Real(1) - gt);
        dvfirst[i] += dv[i] * gt;
        dv[i] *= Real(1) - gt;
        t1[i] = dgp;
        G.v0.data[i % C] += dgp;
      }
      mm_tn_acc(La.hv.data(), t1.data(), G.v2.data.data(), M, Dv, C);
      mm_nt(t1.data(), P.v2.data.data(), dhid.data(), M, C, Dv);
      mm_tn_acc(La.xv.data(), dhid.data(), G.v1.data.data(), M, C, Dv);
      mm_nt(dhid.data(), P.v1.data.data(), t2.data(), M, Dv, C);
      dxv_extra = t2.data();
    }
    Real* dxr = &dx_mix[0];
    Real* dxw = &dx_mix[M * C];
    Real* dxk = &dx_mix[2 * M * C];
    Real* dxv = &dx_mix[3 * M * C];
    Real* dxa = &dx_mix[4 * M * C];
    Real* dxg = &dx_mix[5 * M * C];
    // r, k, v linear layers
    mm_tn_acc(dr.data(), La.xr.data(), G.Wr.data.data(), M, C, C);
    mm_nn(dr.data(), P.Wr.data.data(), dxr, M, C, C);
    mm_tn_acc(dk0.data(), La.xk.data(), G.Wk.data.data(), M, C, C);
    mm_nn(dk0.data(), P.Wk.data.data(), dxk, M, C, C);
    mm_tn_acc(dv.data(), La.xv.data(), G.Wv.data.data(), M, C, C);
    mm_nn(dv.data(), P.Wv.data.data(), dxv, M, C, C);
    if (dxv_extra)
      for (size_t i = 0; i < M * C; ++i) dxv[i] += dxv_extra[i];
    // a = σ(a0 + (x_a a1) a2)
    for (size_t i = 0; i < M * C; ++i) {
      t1[i] = da[i] * La.a[i] * (Real(1) - La.a[i]);
      G.a0.data[i % C] += t1[i];
    }
    mm_tn_acc(La.ha.data(), t1.data(), G.a2.data.data(), M, Da, C);
    mm_nt(t1.data(), P.a2.data.data(), dhid.data(), M, C, Da);
    mm_tn_acc(La.xa.data(), dhid.data(), G.a1.data.data(), M, C, Da);
    mm_nt(dhid.data(), P.a1.data.data(), dxa, M, Da, C);
    // g = σ(x_g g1) g2
    mm_tn_acc(La.hg.data(), dg.data(), G.g2.data.data(), M, Dg, C);
    mm_nt(dg.data(), P.g2.data.data(), dhid.data(), M, C, Dg);
    for (size_t i = 0; i < M * Dg; ++i) dhid[i] *= La.hg[i] * (Real(1) - La.hg[i]);
    mm_tn_acc(La.xg.data(), dhid.data(), G.g1.data.data(), M, C, Dg);
    mm_nt(dhid.data(), P.g1.data.data(), dxg, M, Dg, C);
    // decay = exp(kDecayScale σ(w_raw)), w_raw = w0 + tanh(x_w w1) w2
    for (size_t i = 0; i < M * C; ++i) {
      t1[i] = dw[i] * La.w[i] * Real(kDecayScale) * La.sw[i] * (Real(1) - La.sw[i]);
      G.w0.data[i % C] += t1[i];
    }
    mm_tn_acc(La.hw.data(), t1.data(), G.w2.data.data(), M, Dw, C);
    mm_nt(t1.data(), P.w2.data.data(), dhid.data(), M, C, Dw);
    for (size_t i = 0; i < M * Dw; ++i) dhid[i] *= Real(1) - La.hw[i] * La.hw[i];
    mm_tn_acc(La.xw.data(), dhid.data(), G.w1.data.data(), M, C, Dw);
    mm_nt(dhid.data(), P.w1.data.data(), dxw, M, Dw, C);
    // token-shift mixes: x_* = u + (prev − u) ⊙ mix_*
    std::fill(du.begin(), du.end(), Real(0));
    const Real* mixes[6] = {P.x_r.data.data(), P.x_w.data.data(), P.x_k.data.data(),
                            P.x_v.data.data(), P.x_a.data.data(), P.x_g.data.data()};
    Real* gmix[6] = {G.x_r.data.data(), G.x_w.data.data(), G.x_k.data.data(),
                     G.x_v.data.data(), G.x_a.data.data(), G.x_g.data.data()};
    for (size_t m = 0; m < M; ++m) {
      const bool first = m % T == 0;
      for (size_t c = 0; c < C; ++c) {
        const size_t o = m * C + c;
        const Real diff = (first ? Real(0) : La.u[o - C]) - La.u[o];
        Real dprev = 0, dcur = 0;
        for (int q = 0; q < 6; ++q) {
          const Real gx = dx_mix[q * M * C + o];
          gmix[q][c] += gx * diff;
          dcur += gx * (Real(1) - mixes[q][c]);
          dprev += gx * mixes[q][c];
        }
        du[o] += dcur;
        if (!first) du[o - C] += dprev;
      }
    }
    for (size_t m = 0; m < M; ++m)
      ops::norm_backward(&du[m * C], &La.xhat1[m * C], &La.rstd1[m], P.ln1_w.data.data(),
                         &dx[m * C], G.ln1_w.data.data(), G.ln1_b.data.data(), 1, C, true);
  }
  // x = ln0(emb[tokens])
  const auto& l0 = p.layers[0];
  auto& g0 = g.layers[0];
  for (size_t m = 0; m < M; ++m) {
    ops::norm_backward(&dx[m * C], &A.ln0_xhat[m * C], &A.ln0_rstd[m], l0.ln0_w.data.data(),
                       &t1[m * C], g0.ln0_w.data.data(), g0.ln0_b.data.data(), 1, C, false);
    Real* ge = &g.emb.data[size_t(A.tokens[m]) * C];
    for (size_t c = 0; c < C; ++c) ge[c] += t1[m * C + c];
  }
}

template <class Real>
double cross_entropy(const Real* logits, const int32_t* targets, size_t rows, size_t V, bool l2wrap,
                     Real* dlogits) {
  double total = 0;
  for (size_t m = 0; m < rows; ++m) {
    const Real* z = logits + m * V;
    size_t amax = 0;
    for (size_t c = 1; c < V; ++c)
      if (z[c] > z[amax]) amax = c;  // first index of the maximum
    const double zmax = z[amax];
    double se = 0;
    for (size_t c = 0; c < V; ++c) se += std::exp(double(z[c]) - zmax);
    const double lse = zmax + std::log(se);
    total += lse - z[targets[m]];
    if (dlogits) {
      Real* dz = dlogits + m * V;
      for (size_t c = 0; c < V; ++c) dz[c] = Real(std::exp(double(z[c]) - lse) / double(rows));
      dz[targets[m]] -= Real(1.0 / double(rows));
      // L2Wrap: gradient of 1e-4/(2·rows)·max(z)², the argmax held fixed
      if (l2wrap) dz[amax] += Real(zmax * kL2WrapFactor / double(rows));
    }
  }
  return total / double(rows);
}

GradResult compute_gradients(const Params<float>& p, const Batch& b, bool l2wrap,
                             const LayerStates<float>* s0) {
  GradResult r;
  const size_t M = b.B * b.T, V = size_t(p.d.V);
  r.logits.resize(M * V);
  std::vector<float> dlogits(M * V);
  Rwkv7Trainer<float> tr;
  tr.forward(p, b.tokens.data(), b.B, b.T, s0, r.logits.data());
  r.loss = cross_entropy(r.logits.data(), b.targets.data(), M, V, l2wrap, dlogits.data());
  r.grads = zeros_like(p);
  tr.backward(p, dlogits.data(), r.grads, &r.ds0);
  return r;
}

template class Rwkv7Trainer<float>;
template class Rwkv7Trainer<double>;
template double cross_entropy<float>(const float*, const int32_t*, size_t, size_t, bool, float*);
template double cross_entropy<double>(const double*, const int32_t*, size_t, size_t, bool, double*);

}  // namespace wkv::train
