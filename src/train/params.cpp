// Loading, zeroing, converting and exporting the trainable RWKV-7 parameters.
#include "train/params.hpp"

namespace wkv::train {

namespace {

Expected<int64_t> dim_of(const TensorMap& t, const std::string& name, size_t axis,
                         const std::string& where) {
  auto it = t.find(name);
  if (it == t.end()) return Error{where + ": missing tensor '" + name + "' (not an RWKV-7 model?)"};
  if (it->second.shape.size() <= axis || it->second.shape[axis] <= 0)
    return Error{where + ": tensor '" + name + "' has unexpected shape " + it->second.shape_str()};
  return it->second.shape[axis];
}

// Sets the expected shape of every parameter from the dims (layer 0's v* only if `v_l0`).
template <class Real>
void shape_params(Params<Real>& p, bool v_l0) {
  const Dims& d = p.d;
  const std::vector<int64_t> c{d.C}, mix{1, 1, d.C};
  p.emb.shape = {d.V, d.C};
  p.layers.assign(size_t(d.L), {});
  for (int64_t i = 0; i < d.L; ++i) {
    auto& l = p.layers[size_t(i)];
    if (i == 0) l.ln0_w.shape = l.ln0_b.shape = c;
    l.ln1_w.shape = l.ln1_b.shape = l.ln2_w.shape = l.ln2_b.shape = c;
    l.x_r.shape = l.x_w.shape = l.x_k.shape = l.x_v.shape = l.x_a.shape = l.x_g.shape = mix;
    l.w1.shape = {d.C, d.Dw};
    l.w2.shape = {d.Dw, d.C};
    l.w0.shape = mix;
    l.a1.shape = {d.C, d.Da};
    l.a2.shape = {d.Da, d.C};
    l.a0.shape = mix;
    if (i > 0 || v_l0) {
      l.v1.shape = {d.C, d.Dv};
      l.v2.shape = {d.Dv, d.C};
      l.v0.shape = mix;
    }
    l.g1.shape = {d.C, d.Dg};
    l.g2.shape = {d.Dg, d.C};
    l.k_k.shape = l.k_a.shape = mix;
    l.r_k.shape = {d.H, d.N};
    l.Wr.shape = l.Wk.shape = l.Wv.shape = l.Wo.shape = {d.C, d.C};
    l.lnx_w.shape = l.lnx_b.shape = c;
    l.ffn_x_k.shape = mix;
    l.ffn_key.shape = {d.F, d.C};
    l.ffn_value.shape = {d.C, d.F};
  }
  p.ln_out_w.shape = p.ln_out_b.shape = c;
  p.head.shape = {d.V, d.C};
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t x : s) n *= x;
  return n;
}

}  // namespace

template <class Real>
Expected<Params<Real>> params_from_tensors(const TensorMap& t, const std::string& where) {
  Params<Real> p;
  Dims& d = p.d;
  int64_t L = 0;
  while (t.count("blocks." + std::to_string(L) + ".att.r_k")) ++L;
  if (L == 0) return Error{where + ": missing tensor 'blocks.0.att.r_k' (not an RWKV-7 model)"};
  d.L = L;
  auto V = dim_of(t, "emb.weight", 0, where);
  auto C = dim_of(t, "emb.weight", 1, where);
  auto H = dim_of(t, "blocks.0.att.r_k", 0, where);
  auto N = dim_of(t, "blocks.0.att.r_k", 1, where);
  auto F = dim_of(t, "blocks.0.ffn.key.weight", 0, where);
  auto Dw = dim_of(t, "blocks.0.att.w1", 1, where);
  auto Da = dim_of(t, "blocks.0.att.a1", 1, where);
  auto Dg = dim_of(t, "blocks.0.att.g1", 1, where);
  for (auto* e : {&V, &C, &H, &N, &F, &Dw, &Da, &Dg})
    if (!*e) return e->error();
  d.V = *V, d.C = *C, d.H = *H, d.N = *N, d.F = *F, d.Dw = *Dw, d.Da = *Da, d.Dg = *Dg;
  const bool v_l0 = t.count("blocks.0.att.v1") > 0;
  const std::string vname = L > 1 ? "blocks.1.att.v1" : "blocks.0.att.v1";
  if (L > 1 || v_l0) {
    auto Dv = dim_of(t, vname, 1, where);
    if (!Dv) return Dv.error();
    d.Dv = *Dv;
  }
  if (d.H * d.N != d.C)
    return Error{where + ": 'blocks.0.att.r_k' is [" + std::to_string(d.H) + ", " +
                 std::to_string(d.N) + "] but n_embd is " + std::to_string(d.C)};
  shape_params(p, v_l0);
  Status st;
  for_each_param(p, [&](const std::string& name, Param<Real>& prm) {
    if (!st) return;
    auto it = t.find(name);
    if (it == t.end()) {
      st = Error{where + ": missing tensor '" + name + "'"};
      return;
    }
    const Tensor& ten = it->second;
    if (ten.numel() != numel(prm.shape) ||
        (ten.shape != prm.shape && !(prm.shape.size() == 3 && ten.shape.size() == 1))) {
      std::string want = "[";
      for (size_t i = 0; i < prm.shape.size(); ++i)
        want += (i ? ", " : "") + std::to_string(prm.shape[i]);
      st = Error{where + ": tensor '" + name + "' has shape " + ten.shape_str() + ", expected " +
                 want + "]"};
      return;
    }
    if (ten.dtype != DType::f32 && ten.dtype != DType::bf16 && ten.dtype != DType::f16 &&
        ten.dtype != DType::f64) {
      st = Error{where + ": tensor '" + name + "' has dtype " + std::string(dtype_name(ten.dtype)) +
                 ", expected a float type"};
      return;
    }
    std::vector<float> v = to_f32(ten);
    prm.data.assign(v.begin(), v.end());
  });
  if (!st) return st.error();
  return p;
}

template <class Real>
Params<Real> zeros_like(const Params<Real>& p) {
  Params<Real> z;
  z.d = p.d;
  z.layers.resize(p.layers.size());
  // Walk both with the same visitor order: collect shapes first.
  std::vector<const Param<Real>*> src;
  for_each_param(p, [&](const std::string&, const Param<Real>& prm) { src.push_back(&prm); });
  shape_params(z, !p.layers.empty() && !p.layers[0].v1.shape.empty());
  size_t i = 0;
  for_each_param(z, [&](const std::string&, Param<Real>& prm) {
    prm.data.assign(src[i++]->data.size(), Real(0));
  });
  return z;
}

template <class To, class From>
Params<To> params_cast(const Params<From>& p) {
  Params<To> q;
  q.d = p.d;
  shape_params(q, !p.layers.empty() && !p.layers[0].v1.shape.empty());
  std::vector<const Param<From>*> src;
  for_each_param(p, [&](const std::string&, const Param<From>& prm) { src.push_back(&prm); });
  size_t i = 0;
  for_each_param(q, [&](const std::string&, Param<To>& prm) {
    prm.data.assign(src[i]->data.begin(), src[i]->data.end());
    ++i;
  });
  return q;
}

template <class Real>
TensorMap params_to_tensors(const Params<Real>& p, const std::string& prefix) {
  TensorMap m;
  for_each_param(p, [&](const std::string& name, const Param<Real>& prm) {
    m[prefix + name] =
        Tensor::from_f32(prm.shape, std::vector<float>(prm.data.begin(), prm.data.end()));
  });
  return m;
}

size_t param_count(const Params<float>& p) {
  size_t n = 0;
  for_each_param(p, [&](const std::string&, const Param<float>& prm) { n += prm.data.size(); });
  return n;
}

Params<float> zeros_with_dims(const Dims& d, bool v_l0) {
  Params<float> p;
  p.d = d;
  shape_params(p, v_l0);
  for_each_param(p, [](const std::string&, Param<float>& x) {
    x.data.assign(size_t(numel(x.shape)), 0.0f);
  });
  return p;
}

template Expected<Params<float>> params_from_tensors<float>(const TensorMap&, const std::string&);
template Expected<Params<double>> params_from_tensors<double>(const TensorMap&, const std::string&);
template Params<float> zeros_like<float>(const Params<float>&);
template Params<double> zeros_like<double>(const Params<double>&);
template Params<double> params_cast<double, float>(const Params<float>&);
template Params<float> params_cast<float, double>(const Params<double>&);
template TensorMap params_to_tensors<float>(const Params<float>&, const std::string&);
template TensorMap params_to_tensors<double>(const Params<double>&, const std::string&);

}  // namespace wkv::train
