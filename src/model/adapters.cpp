// Tuned initial states and LoRA adapters applied at load (see adapters.hpp).
#include "model/adapters.hpp"

#include <charconv>
#include <cmath>
#include <set>

namespace wkv {

std::string time_state_name(int layer) {
  return "blocks." + std::to_string(layer) + ".att.time_state";
}

namespace {

// A model whose fresh states start from a given State (the wrapped model does the work).
class InitialStateModel final : public Model {
 public:
  InitialStateModel(std::unique_ptr<Model> base, State init)
      : base_(std::move(base)), init_(std::move(init)) {}
  const Hparams& hparams() const override { return base_->hparams(); }
  State new_state() const override { return init_; }
  void forward_one(int32_t token, State& state, float* logits) override {
    base_->forward_one(token, state, logits);
  }
  void forward_seq(std::span<const int32_t> tokens, State& state, float* logits,
                   Logits which) override {
    base_->forward_seq(tokens, state, logits, which);
  }
  void forward_batch(std::span<const BatchItem> items) override { base_->forward_batch(items); }

 private:
  std::unique_ptr<Model> base_;
  State init_;
};

std::string shape_of(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  return t.shape_str();
}

bool float_dtype(DType d) {
  return d == DType::f32 || d == DType::f16 || d == DType::bf16 || d == DType::f64;
}

}  // namespace

Expected<std::vector<std::vector<float>>> read_time_states(const TensorMap& t, int n_layer,
                                                           int64_t H, int64_t N,
                                                           const std::string& where) {
  const std::vector<int64_t> want = {H, N, N};
  for (const auto& [name, ten] : t) {  // every tensor must be one of this model's layers'
    bool ours = false;
    for (int i = 0; i < n_layer && !ours; ++i) ours = name == time_state_name(i);
    if (!ours)
      return Error{where + ": tensor '" + name + "' is not an initial state of this model (" +
                   std::to_string(n_layer) + " layers: blocks.0.att.time_state .. " +
                   time_state_name(n_layer - 1) + ")"};
  }
  std::vector<std::vector<float>> out;
  for (int i = 0; i < n_layer; ++i) {
    const std::string name = time_state_name(i);
    auto it = t.find(name);
    if (it == t.end())
      return Error{where + ": state tensor '" + name + "' is missing (the model has " +
                   std::to_string(n_layer) + " layers; a state file from another model?)"};
    if (it->second.shape != want)
      return Error{where + ": state tensor '" + name + "' has shape " + it->second.shape_str() +
                   ", this model needs " + shape_of(want) +
                   " (heads, head size, head size; a state file from another model?)"};
    if (!float_dtype(it->second.dtype))
      return Error{where + ": state tensor '" + name + "' has dtype " +
                   std::string(dtype_name(it->second.dtype)) + " (expected a float type)"};
    out.push_back(to_f32(it->second));
    for (float x : out.back())
      if (!std::isfinite(x))
        return Error{where + ": state tensor '" + name + "' holds a non-finite value"};
  }
  return out;
}

Expected<std::unique_ptr<Model>> with_initial_state(std::unique_ptr<Model> model,
                                                    const TensorMap& t, const std::string& where) {
  const Hparams& hp = model->hparams();
  if (hp.version == ModelVersion::v4)
    return Error{where + ": RWKV-4 has no WKV matrix state to start from (--state needs v5, v6 "
                         "or v7)"};
  const int64_t H = hp.n_head, N = hp.head_size;
  auto states = read_time_states(t, hp.n_layer, H, N, where);
  if (!states) return states.error();
  State s = model->new_state();
  for (int i = 0; i < hp.n_layer; ++i) {
    const std::string slot = "blocks." + std::to_string(i) + ".att.wkv";
    size_t k = 0;
    while (k < s.slots.size() && s.slots[k].name != slot) ++k;
    if (k == s.slots.size() || s.slots[k].shape != std::vector<int64_t>{H, N, N})
      return Error{where + ": this model's state has no " + slot + " " + shape_of({H, N, N})};
    const std::vector<float>& v = (*states)[size_t(i)];
    auto init = std::make_shared<std::vector<float>>(v);
    if (hp.version != ModelVersion::v7_0)  // v5/v6 inference state: [head, key, value]
      for (int64_t h = 0; h < H; ++h)
        for (int64_t a = 0; a < N; ++a)
          for (int64_t b = 0; b < N; ++b)
            (*init)[size_t((h * N + a) * N + b)] = v[size_t((h * N + b) * N + a)];
    s.slots[k].init_values = std::move(init);
  }
  s.reset();
  return std::unique_ptr<Model>(new InitialStateModel(std::move(model), std::move(s)));
}

void add_lora_delta(float* W, const float* A, const float* B, size_t out, size_t in, size_t R,
                    double scale) {
  for (size_t o = 0; o < out; ++o) {
    const float* b = B + o * R;
    float* w = W + o * in;
    for (size_t i = 0; i < in; ++i) {
      double s = 0;
      for (size_t r = 0; r < R; ++r) s += double(b[r]) * double(A[r * in + i]);
      w[i] = float(double(w[i]) + scale * s);
    }
  }
}

Expected<LoraScale> lora_scale_from_metadata(const std::map<std::string, std::string>& meta,
                                             const std::string& where) {
  LoraScale ls;
  auto num = [&](const char* key, auto& out) -> Status {
    auto it = meta.find(key);
    if (it == meta.end())
      return Error{where + ": no '" + key + "' in the metadata (not a LoRA file from wkv train "
                           "--tune lora?)"};
    const std::string& s = it->second;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || p != s.data() + s.size())
      return Error{where + ": metadata '" + key + "' is not a number: '" + s + "'"};
    return Status::success();
  };
  WKV_TRY_STATUS(num("lora_alpha", ls.alpha));
  WKV_TRY_STATUS(num("lora_rank", ls.rank));
  if (ls.rank <= 0) return Error{where + ": lora_rank must be positive"};
  if (!std::isfinite(ls.alpha)) return Error{where + ": lora_alpha is not finite"};
  return ls;
}

Status apply_lora(TensorMap& weights, const TensorMap& lora,
                  const std::map<std::string, std::string>& meta, const std::string& where) {
  auto sc = lora_scale_from_metadata(meta, where);
  if (!sc) return sc.error();
  const int64_t R = sc->rank;
  std::set<std::string> targets;
  for (const auto& [name, ten] : lora) {
    const bool a = name.ends_with(kLoraA), b = name.ends_with(kLoraB);
    if (!a && !b)
      return Error{where + ": tensor '" + name + "' is not a LoRA factor (" + kLoraA + " / " +
                   kLoraB + ")"};
    const std::string target = name.substr(0, name.size() - std::string(kLoraA).size());
    const std::string partner = target + (a ? kLoraB : kLoraA);
    if (!lora.count(partner))
      return Error{where + ": '" + name + "' has no partner '" + partner + "'"};
    targets.insert(target);
  }
  if (targets.empty()) return Error{where + ": no LoRA adapters in the file"};
  // Check everything before changing anything.
  for (const std::string& target : targets) {
    auto it = weights.find(target);
    if (it == weights.end())
      return Error{where + ": LoRA target tensor '" + target +
                   "' is not in the model (a LoRA file for another model?)"};
    const Tensor& W = it->second;
    const Tensor& A = lora.at(target + kLoraA);
    const Tensor& B = lora.at(target + kLoraB);
    if (W.shape.size() != 2)
      return Error{where + ": LoRA target tensor '" + target + "' has shape " + W.shape_str() +
                   " (a matrix [out, in] is needed)"};
    if (!float_dtype(W.dtype))
      return Error{where + ": LoRA target tensor '" + target + "' is stored as " +
                   std::string(dtype_name(W.dtype)) +
                   "; adapters need a float model (apply them before quantizing: wkv merge)"};
    const int64_t out = W.shape[0], in = W.shape[1];
    if (A.shape != std::vector<int64_t>{R, in} || !float_dtype(A.dtype))
      return Error{where + ": '" + target + kLoraA + "' has shape " + A.shape_str() +
                   ", the model's " + target + " " + W.shape_str() + " with rank " +
                   std::to_string(R) + " needs " + shape_of({R, in})};
    if (B.shape != std::vector<int64_t>{out, R} || !float_dtype(B.dtype))
      return Error{where + ": '" + target + kLoraB + "' has shape " + B.shape_str() +
                   ", the model's " + target + " " + W.shape_str() + " with rank " +
                   std::to_string(R) + " needs " + shape_of({out, R})};
  }
  for (const std::string& target : targets) {
    Tensor& W = weights.at(target);
    const std::vector<int64_t> shape = W.shape;
    std::vector<float> w = to_f32(W);
    const std::vector<float> a = to_f32(lora.at(target + kLoraA)),
                             b = to_f32(lora.at(target + kLoraB));
    add_lora_delta(w.data(), a.data(), b.data(), size_t(shape[0]), size_t(shape[1]), size_t(R),
                   sc->scale());
    W = Tensor::from_f32(shape, std::move(w));
  }
  return Status::success();
}

}  // namespace wkv
