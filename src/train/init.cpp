// Official RWKV-7 initialisation (see init.hpp). Orthogonal matrices follow nn.init.orthogonal_:
// the Q factor of a Gaussian matrix (taller side first), its columns' signs fixed by diag(R),
// times the gain.
#include "train/init.hpp"

#include <cmath>
#include <random>

namespace wkv::train {

namespace {

// Fills w [rows, cols] with an orthogonal matrix times s·(√(rows/cols) if rows > cols).
void orthogonal(Param<float>& w, double s, std::mt19937_64& rng) {
  const size_t rows = size_t(w.shape[0]), cols = size_t(w.shape[1]);
  const double gain = s * (rows > cols ? std::sqrt(double(rows) / double(cols)) : 1.0);
  // Householder QR of a tall Gaussian matrix A [m, n] (m >= n), in double.
  const size_t m = std::max(rows, cols), n = std::min(rows, cols);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> a(m * n);
  for (double& x : a) x = normal(rng);
  std::vector<double> vs(m * n, 0.0), rdiag(n);
  for (size_t k = 0; k < n; ++k) {
    double norm = 0;
    for (size_t i = k; i < m; ++i) norm += a[i * n + k] * a[i * n + k];
    norm = std::sqrt(norm);
    const double alpha = a[k * n + k] > 0 ? -norm : norm;  // R[k][k]
    rdiag[k] = alpha;
    double* v = &vs[k * m];
    for (size_t i = k; i < m; ++i) v[i] = a[i * n + k];
    v[k] -= alpha;
    double vn = 0;
    for (size_t i = k; i < m; ++i) vn += v[i] * v[i];
    if (vn == 0) continue;
    for (size_t j = k; j < n; ++j) {  // A -= 2 v (vᵀA) / (vᵀv)
      double dot = 0;
      for (size_t i = k; i < m; ++i) dot += v[i] * a[i * n + j];
      const double f = 2 * dot / vn;
      for (size_t i = k; i < m; ++i) a[i * n + j] -= f * v[i];
    }
  }
  // Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity.
  std::vector<double> q(m * n, 0.0);
  for (size_t j = 0; j < n; ++j) q[j * n + j] = 1;
  for (size_t kk = n; kk-- > 0;) {
    const double* v = &vs[kk * m];
    double vn = 0;
    for (size_t i = kk; i < m; ++i) vn += v[i] * v[i];
    if (vn == 0) continue;
    for (size_t j = 0; j < n; ++j) {
      double dot = 0;
      for (size_t i = kk; i < m; ++i) dot += v[i] * q[i * n + j];
      const double f = 2 * dot / vn;
      for (size_t i = kk; i < m; ++i) q[i * n + j] -= f * v[i];
    }
  }
  // torch: q *= sign(diag(r)), so R has a positive diagonal.
  for (size_t j = 0; j < n; ++j)
    if (rdiag[j] < 0)
      for (size_t i = 0; i < m; ++i) q[i * n + j] = -q[i * n + j];
  w.data.resize(rows * cols);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      const double x = rows >= cols ? q[r * n + c] : q[c * n + r];  // wide: the transpose
      w.data[r * cols + c] = float(gain * x);
    }
}

void fill(Param<float>& p, float v) { std::fill(p.data.begin(), p.data.end(), v); }

}  // namespace

int64_t official_lora_width(int64_t C, double factor) {
  const double x = factor * std::sqrt(double(C)) / 32.0;
  return std::max<int64_t>(32, int64_t(std::nearbyint(x)) * 32);  // FE_TONEAREST: half to even
}

Expected<Params<float>> official_init(Dims d, uint64_t seed) {
  if (d.L < 1 || d.C < 1 || d.N < 1 || d.V < 1)
    return Error{"layers, width, head size and vocabulary must be positive"};
  if (d.C % d.N != 0)
    return Error{"width " + std::to_string(d.C) + " is not a multiple of the head size " +
                 std::to_string(d.N)};
  d.H = d.C / d.N;
  if (d.F == 0) d.F = 4 * d.C;
  if (d.Dw == 0) d.Dw = official_lora_width(d.C, 2.5);
  if (d.Da == 0) d.Da = official_lora_width(d.C, 2.5);
  if (d.Dv == 0) d.Dv = official_lora_width(d.C, 1.7);
  if (d.Dg == 0) d.Dg = official_lora_width(d.C, 5.0);
  Params<float> p = zeros_with_dims(d, true);  // the official trainer gives layer 0 v0/v1/v2 too
  std::mt19937_64 rng(seed);
  const size_t C = size_t(d.C), N = size_t(d.N);
  const double L = double(d.L);

  std::uniform_real_distribution<double> u(-1e-4, 1e-4);
  for (float& x : p.emb.data) x = float(u(rng));
  std::vector<double> ddd(C), linear(C), zigzag(C);
  for (size_t i = 0; i < C; ++i) {
    ddd[i] = double(i) / double(C);
    linear[i] = (C > 1 ? double(i) / double(C - 1) : 0.0) - 0.5;
    const double half = (double(N) - 1) / 2;
    const double z = half > 0 ? (double(i % N) - half) / half : 0.0;
    zigzag[i] = z * std::fabs(z);
  }
  for (size_t li = 0; li < p.layers.size(); ++li) {
    auto& l = p.layers[li];
    const double lf = double(li);
    const double r0 = d.L > 1 ? lf / (L - 1) : 0.0;
    const double r1 = 1.0 - lf / L;
    for (auto* w : {&l.ln0_w, &l.ln1_w, &l.ln2_w}) fill(*w, 1.0f);
    auto mix = [&](Param<float>& x, double pw) {
      for (size_t i = 0; i < C; ++i) x.data[i] = float(1.0 - std::pow(ddd[i], pw));
    };
    mix(l.x_r, 0.2 * r1);
    mix(l.x_w, 0.9 * r1);
    mix(l.x_k, 0.7 * r1);
    mix(l.x_v, 0.7 * r1);
    mix(l.x_a, 0.9 * r1);
    mix(l.x_g, 0.2 * r1);
    mix(l.ffn_x_k, std::pow(r1, 4));
    for (size_t i = 0; i < C; ++i) {
      const double www =
          -6 + 6 * std::pow(C > 1 ? double(i) / double(C - 1) : 0.0, 1 + std::pow(r0, 0.3));
      l.w0.data[i] = float(www + 0.5 + 2.5 * zigzag[i]);
      l.a0.data[i] = float(-0.19 + 0.3 * zigzag[i] + 0.4 * linear[i]);
      l.v0.data[i] = float(0.73 - 0.4 * linear[i]);
      l.k_k.data[i] = float(0.71 - 0.1 * linear[i]);
    }
    fill(l.k_a, 1.02f);
    fill(l.r_k, -0.04f);
    // LoRA first matrices stay 0; the second ones are orthogonal with gain 0.1.
    for (auto* w2 : {&l.w2, &l.a2, &l.v2, &l.g2}) orthogonal(*w2, 0.1, rng);
    orthogonal(l.Wr, 1.0, rng);
    orthogonal(l.Wk, 0.1, rng);
    orthogonal(l.Wv, 1.0, rng);
    // Wo and ffn.value stay 0.
    const float lnx = float(std::pow((1.0 + lf) / L, 0.7));
    fill(l.lnx_w, lnx);
    orthogonal(l.ffn_key, 1.0, rng);
  }
  fill(p.ln_out_w, 1.0f);
  orthogonal(p.head, 0.5, rng);
  return p;
}

}  // namespace wkv::train
