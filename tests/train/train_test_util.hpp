// Helpers for the training tests: the golden-data metric and running one forward/backward.
#pragma once

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "core/tensor.hpp"
#include "formats/formats.hpp"
#include "test_util.hpp"
#include "train/batch.hpp"
#include "train/params.hpp"
#include "train/rwkv7.hpp"

namespace wkv::train::test {

// rel(x, ref) = ‖x − ref‖₂ / ‖ref‖₂ over the whole tensor, accumulated in double (the metric of
// ../shared/testdata/train/README.md "Tolerances").
template <class A, class B>
double rel_l2(const std::vector<A>& x, const std::vector<B>& ref) {
  EXPECT_EQ(x.size(), ref.size());
  if (x.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = double(x[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  if (std::isnan(num)) return INFINITY;
  return den == 0 ? (num == 0 ? 0 : INFINITY) : std::sqrt(num / den);
}

inline TensorMap load_or_die(const std::string& path) {
  auto t = load_safetensors(path);
  if (!t) {
    ADD_FAILURE() << t.error().message;
    return {};
  }
  return std::move(*t);
}

inline std::vector<float> get(const TensorMap& m, const std::string& name) {
  auto it = m.find(name);
  if (it == m.end()) {
    ADD_FAILURE() << "golden tensor missing: " << name;
    return {};
  }
  return to_f32(it->second);
}

template <class Real>
struct RunResult {
  double loss = 0;
  std::vector<Real> logits, dlogits;
  Grads<Real> grads;
  LayerStates<Real> ds0;
};

// One forward + loss + backward. dlogits_override (if given) replaces the loss gradient.
template <class Real>
RunResult<Real> run_model(
    const Params<Real>& p, const Batch& b, bool l2wrap,
    const std::type_identity_t<LayerStates<Real>>* s0 = nullptr, size_t chunk = 16,
    const std::type_identity_t<std::vector<Real>>* dlogits_override = nullptr) {
  RunResult<Real> r;
  const size_t M = b.B * b.T, V = size_t(p.d.V);
  r.logits.resize(M * V);
  r.dlogits.resize(M * V);
  Rwkv7Trainer<Real> tr(chunk);
  tr.forward(p, b.tokens.data(), b.B, b.T, s0, r.logits.data());
  r.loss = cross_entropy(r.logits.data(), b.targets.data(), M, V, l2wrap, r.dlogits.data());
  r.grads = zeros_like(p);
  tr.backward(p, dlogits_override ? dlogits_override->data() : r.dlogits.data(), r.grads, &r.ds0);
  return r;
}

}  // namespace wkv::train::test
