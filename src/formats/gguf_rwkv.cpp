// Canonical RWKV tensors <-> GGUF: llama.cpp's rwkv6 / rwkv7 name table and transforms
// (../shared/spec/GGUF_RWKV.md §2-§4), wkv's own wkv-rwkv4 / wkv-rwkv5 (canonical names), the
// embedded World vocabulary, dtype casts and the quantization rule.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "core/quant.hpp"
#include "formats/formats.hpp"
#include "formats/gguf.hpp"

namespace wkv {

namespace {

// How a canonical tensor becomes its GGUF counterpart (and back).
enum class Xf {
  none,       // same shape
  squeeze,    // [1, 1, C] -> [C]           (back: [C] -> [1, 1, C])
  transpose,  // [A, B] -> [B, A]
  flatten,    // [H, N] -> [H*N]            (back: [C] -> [C/N, N])
  perm021,    // [5, D, C] -> [5, C, D]     (its own inverse)
};

struct Row {
  const char* canon;  // after "blocks.N."
  const char* gguf;   // after "blk.N."
  Xf xf;
};

constexpr Row kV7Rows[] = {
    {"ln1.weight", "attn_norm.weight", Xf::none},
    {"ln1.bias", "attn_norm.bias", Xf::none},
    {"ln2.weight", "attn_norm_2.weight", Xf::none},
    {"ln2.bias", "attn_norm_2.bias", Xf::none},
    {"att.w0", "time_mix_w0.weight", Xf::squeeze},
    {"att.w1", "time_mix_w1.weight", Xf::transpose},
    {"att.w2", "time_mix_w2.weight", Xf::transpose},
    {"att.a0", "time_mix_a0.weight", Xf::squeeze},
    {"att.a1", "time_mix_a1.weight", Xf::transpose},
    {"att.a2", "time_mix_a2.weight", Xf::transpose},
    {"att.v0", "time_mix_v0.weight", Xf::squeeze},
    {"att.v1", "time_mix_v1.weight", Xf::transpose},
    {"att.v2", "time_mix_v2.weight", Xf::transpose},
    {"att.g1", "time_mix_g1.weight", Xf::transpose},
    {"att.g2", "time_mix_g2.weight", Xf::transpose},
    {"att.k_k", "time_mix_k_k.weight", Xf::squeeze},
    {"att.k_a", "time_mix_k_a.weight", Xf::squeeze},
    {"att.r_k", "time_mix_r_k.weight", Xf::flatten},
    {"att.receptance.weight", "time_mix_receptance.weight", Xf::none},
    {"att.key.weight", "time_mix_key.weight", Xf::none},
    {"att.value.weight", "time_mix_value.weight", Xf::none},
    {"att.output.weight", "time_mix_output.weight", Xf::none},
    {"att.ln_x.weight", "time_mix_ln.weight", Xf::none},
    {"att.ln_x.bias", "time_mix_ln.bias", Xf::none},
    {"ffn.x_k", "channel_mix_lerp_k.weight", Xf::squeeze},
    {"ffn.key.weight", "channel_mix_key.weight", Xf::none},
    {"ffn.value.weight", "channel_mix_value.weight", Xf::none},
};
constexpr const char* kV7Fused[] = {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g"};

constexpr Row kV6Rows[] = {
    {"ln1.weight", "attn_norm.weight", Xf::none},
    {"ln1.bias", "attn_norm.bias", Xf::none},
    {"ln2.weight", "attn_norm_2.weight", Xf::none},
    {"ln2.bias", "attn_norm_2.bias", Xf::none},
    {"att.time_maa_x", "time_mix_lerp_x.weight", Xf::squeeze},
    {"att.time_maa_w1", "time_mix_w1.weight", Xf::transpose},
    {"att.time_maa_w2", "time_mix_w2.weight", Xf::perm021},
    {"att.time_decay", "time_mix_decay.weight", Xf::squeeze},
    {"att.time_decay_w1", "time_mix_decay_w1.weight", Xf::transpose},
    {"att.time_decay_w2", "time_mix_decay_w2.weight", Xf::transpose},
    {"att.time_faaaa", "time_mix_first.weight", Xf::none},
    {"att.receptance.weight", "time_mix_receptance.weight", Xf::none},
    {"att.key.weight", "time_mix_key.weight", Xf::none},
    {"att.value.weight", "time_mix_value.weight", Xf::none},
    {"att.gate.weight", "time_mix_gate.weight", Xf::none},
    {"att.output.weight", "time_mix_output.weight", Xf::none},
    {"att.ln_x.weight", "time_mix_ln.weight", Xf::none},
    {"att.ln_x.bias", "time_mix_ln.bias", Xf::none},
    {"ffn.time_maa_k", "channel_mix_lerp_k.weight", Xf::squeeze},
    {"ffn.time_maa_r", "channel_mix_lerp_r.weight", Xf::squeeze},
    {"ffn.key.weight", "channel_mix_key.weight", Xf::none},
    {"ffn.receptance.weight", "channel_mix_receptance.weight", Xf::none},
    {"ffn.value.weight", "channel_mix_value.weight", Xf::none},
};
constexpr const char* kV6Fused[] = {"att.time_maa_w", "att.time_maa_k", "att.time_maa_v",
                                    "att.time_maa_r", "att.time_maa_g"};

struct Global {
  const char* canon;
  const char* gguf;
};
constexpr Global kGlobals[] = {
    {"emb.weight", "token_embd.weight"},
    {"blocks.0.ln0.weight", "token_embd_norm.weight"},
    {"blocks.0.ln0.bias", "token_embd_norm.bias"},
    {"ln_out.weight", "output_norm.weight"},
    {"ln_out.bias", "output_norm.bias"},
    {"head.weight", "output.weight"},
};

constexpr uint32_t kContextLength = 1048576;
constexpr float kLayerNormEps = 1e-5f;

enum class Arch { rwkv4, rwkv5, rwkv6, rwkv7 };

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::rwkv4: return "wkv-rwkv4";
    case Arch::rwkv5: return "wkv-rwkv5";
    case Arch::rwkv6: return "rwkv6";
    case Arch::rwkv7: return "rwkv7";
  }
  return "";
}

Tensor owned_bytes(DType dt, std::vector<int64_t> shape, std::vector<std::byte> bytes) {
  auto buf = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  Tensor t;
  t.dtype = dt;
  t.strides = contiguous_strides(shape);
  t.shape = std::move(shape);
  t.data = buf->data();
  t.owner = buf;
  return t;
}

// A contiguous version of `t` (itself when it already is).
Tensor contiguous(const Tensor& t) {
  if (t.strides.empty() || t.is_contiguous()) {
    Tensor c = t;
    c.strides = contiguous_strides(c.shape);
    return c;
  }
  return owned_bytes(t.dtype, t.shape, contiguous_bytes(t));
}

Tensor reshaped(const Tensor& t, std::vector<int64_t> shape) {
  Tensor c = contiguous(t);
  c.shape = std::move(shape);
  c.strides = contiguous_strides(c.shape);
  return c;
}

Tensor plain(const Tensor& t) {
  return dtype_is_quantized(t.dtype) ? Tensor::from_f32(t.shape, to_f32(t)) : t;
}

// Dims a <-> b swapped, as a strided view (quantized tensors are dequantized first).
Tensor swapped(const Tensor& src, size_t a, size_t b) {
  Tensor t = plain(src);
  if (t.strides.empty()) t.strides = contiguous_strides(t.shape);
  std::swap(t.shape[a], t.shape[b]);
  std::swap(t.strides[a], t.strides[b]);
  return t;
}

Error map_error(const std::string& where, const std::string& m) {
  return Error{where + ": gguf: " + m};
}

Expected<Tensor> apply(const Tensor& t, Xf xf, bool forward, int64_t head_size,
                       const std::string& name, const std::string& where) {
  const auto bad = [&](const std::string& want) {
    return map_error(where, "tensor '" + name + "' has shape " + t.shape_str() + ", expected " + want);
  };
  switch (xf) {
    case Xf::none: return t;
    case Xf::squeeze:
      if (forward) return reshaped(t, {t.numel()});
      if (t.shape.size() != 1) return bad("a vector");
      return reshaped(t, {1, 1, t.shape[0]});
    case Xf::transpose:
      if (t.shape.size() != 2) return bad("a matrix");
      return swapped(t, 0, 1);
    case Xf::flatten:
      if (forward) return reshaped(t, {t.numel()});
      if (t.shape.size() != 1 || head_size <= 0 || t.shape[0] % head_size != 0)
        return bad("[C] with C a multiple of the head size " + std::to_string(head_size));
      return reshaped(t, {t.shape[0] / head_size, head_size});
    case Xf::perm021:
      if (t.shape.size() != 3) return bad("3 dimensions");
      return swapped(t, 1, 2);
  }
  return t;
}

// llama.cpp stores these in F32 whatever the output type (spec §3.5, checklist §6).
bool always_f32(const std::string& gguf_name, const Tensor& t) {
  if (t.shape.size() <= 1) return true;
  for (const char* s : {"_norm.weight", "time_mix_first", "time_mix_w1", "time_mix_w2",
                        "time_mix_decay_w1", "time_mix_decay_w2", "time_mix_lerp_fused"})
    if (gguf_name.find(s) != std::string::npos) return true;
  return gguf_name.size() < 7 || gguf_name.compare(gguf_name.size() - 7, 7, ".weight") != 0;
}

int count_layers(const TensorMap& t) {
  int n = 0;
  while (t.count("blocks." + std::to_string(n) + ".ln1.weight")) ++n;
  return n;
}

Expected<Arch> detect_arch(const TensorMap& t, const std::string& where) {
  if (t.count("blocks.0.att.r_k") || t.count("blocks.0.att.w0") || t.count("blocks.0.att.x_r"))
    return Arch::rwkv7;
  if (t.count("blocks.0.att.time_maa_x")) return Arch::rwkv6;
  if (t.count("blocks.0.att.ln_x.weight")) return Arch::rwkv5;
  if (t.count("blocks.0.att.time_first") || t.count("blocks.0.att.time_mix_k")) return Arch::rwkv4;
  return map_error(where, "not an RWKV checkpoint (no blocks.0.att tensors wkv recognises)");
}

int64_t dim(const TensorMap& t, const std::string& name, size_t d) {
  auto it = t.find(name);
  if (it == t.end() || it->second.shape.size() <= d) return 0;
  return it->second.shape[d];
}

uint32_t file_type_of(DType t) {
  switch (t) {
    case DType::f32: return 0;
    case DType::f16: return 1;
    case DType::q4_0: return 2;
    case DType::q4_1: return 3;
    case DType::q8_0: return 7;
    case DType::q5_0: return 8;
    case DType::q5_1: return 9;
    case DType::q2_k: return 10;
    case DType::q3_k: return 11;  // Q3_K_S (uniform)
    case DType::q4_k: return 14;  // Q4_K_S
    case DType::q5_k: return 16;  // Q5_K_S
    case DType::q6_k: return 18;
    case DType::bf16: return 32;
    default: return 0;
  }
}

Expected<uint32_t> get_u32(const GgufFile& f, const std::string& key, const std::string& where,
                           std::optional<uint32_t> fallback = std::nullopt) {
  const GgufValue* v = f.find(key);
  if (!v) {
    if (fallback) return *fallback;
    return map_error(where, "missing metadata key '" + key + "'");
  }
  if (v->type != GgufType::u32)
    return map_error(where, "metadata key '" + key + "' has type " + std::string(gguf_type_name(v->type)) +
                                ", expected u32");
  return static_cast<uint32_t>(v->u);
}

}  // namespace

void gguf_update_file_type(GgufFile& f) {
  // The majority type: that of the large matrices (the FFN key), as llama.cpp names it.
  for (const char* n : {"blk.0.channel_mix_key.weight", "blocks.0.ffn.key.weight"})
    if (const Tensor* t = f.tensor(n)) {
      f.set("general.file_type", GgufValue::of_u32(file_type_of(t->dtype)));
      return;
    }
}

Expected<GgufFile> rwkv_to_gguf(const TensorMap& tensors, const GgufExportOptions& opt) {
  const std::string where = "gguf export";
  auto arch = detect_arch(tensors, where);
  if (!arch) return arch.error();
  const std::string a = arch_name(*arch);
  const int L = count_layers(tensors);
  const int64_t V = dim(tensors, "emb.weight", 0), C = dim(tensors, "emb.weight", 1);
  const int64_t F = dim(tensors, "blocks.0.ffn.key.weight", 0);
  if (L == 0 || C == 0 || V == 0) return map_error(where, "missing emb.weight or blocks.0.ln1.weight");

  GgufFile f;
  f.set("general.architecture", GgufValue::of_str(a));
  f.set("general.type", GgufValue::of_str("model"));
  if (!opt.name.empty()) f.set("general.name", GgufValue::of_str(opt.name));
  f.set(a + ".context_length", GgufValue::of_u32(kContextLength));
  f.set(a + ".embedding_length", GgufValue::of_u32(static_cast<uint32_t>(C)));
  f.set(a + ".block_count", GgufValue::of_u32(static_cast<uint32_t>(L)));
  f.set(a + ".feed_forward_length", GgufValue::of_u32(static_cast<uint32_t>(F)));
  f.set(a + ".vocab_size", GgufValue::of_u32(static_cast<uint32_t>(V)));

  std::set<std::string> used;
  auto add = [&](const std::string& gname, Tensor t) {
    if (always_f32(gname, t) && t.dtype != DType::f32) t = cast_tensor(t, DType::f32);
    f.tensors.emplace_back(gname, std::move(t));
  };

  if (*arch == Arch::rwkv4 || *arch == Arch::rwkv5) {
    if (*arch == Arch::rwkv5) {
      const int64_t H = dim(tensors, "blocks.0.att.time_faaaa", 0);
      if (H > 0) f.set(a + ".wkv.head_size", GgufValue::of_u32(static_cast<uint32_t>(C / H)));
    }
    for (const auto& [name, t] : tensors) {
      if (name.size() >= 64) return map_error(where, "tensor name '" + name + "' is too long for GGUF");
      if (t.shape.empty() || t.shape.size() > 4)
        return map_error(where, "tensor '" + name + "' has rank " + std::to_string(t.shape.size()));
      f.tensors.emplace_back(name, t.dtype == DType::f32 || t.dtype == DType::f16 ||
                                           t.dtype == DType::bf16 || dtype_is_quantized(t.dtype)
                                       ? t
                                       : cast_tensor(t, DType::f32));
    }
  } else {
    const bool v7 = *arch == Arch::rwkv7;
    const int64_t H = dim(tensors, v7 ? "blocks.0.att.r_k" : "blocks.0.att.time_faaaa", 0);
    const int64_t N = dim(tensors, v7 ? "blocks.0.att.r_k" : "blocks.0.att.time_faaaa", 1);
    if (H <= 0 || N <= 0 || H * N != C) return map_error(where, "cannot tell the head size");
    f.set(a + ".attention.head_count", GgufValue::of_u32(0));
    f.set(a + ".attention.layer_norm_epsilon", GgufValue::of_f32(kLayerNormEps));
    f.set(a + ".wkv.head_size", GgufValue::of_u32(static_cast<uint32_t>(N)));
    if (v7) {
      const int64_t Da = dim(tensors, "blocks.0.att.a1", 1);
      const int64_t Dv = L > 1 ? dim(tensors, "blocks.1.att.v1", 1) : Da;
      f.set(a + ".attention.decay_lora_rank", GgufValue::of_u32(static_cast<uint32_t>(dim(tensors, "blocks.0.att.w1", 1))));
      f.set(a + ".attention.iclr_lora_rank", GgufValue::of_u32(static_cast<uint32_t>(Da)));
      f.set(a + ".attention.value_residual_mix_lora_rank", GgufValue::of_u32(static_cast<uint32_t>(Dv)));
      f.set(a + ".attention.gate_lora_rank", GgufValue::of_u32(static_cast<uint32_t>(dim(tensors, "blocks.0.att.g1", 1))));
    } else {
      f.set(a + ".time_mix_extra_dim", GgufValue::of_u32(static_cast<uint32_t>(dim(tensors, "blocks.0.att.time_maa_w1", 1) / 5)));
      f.set(a + ".time_decay_extra_dim", GgufValue::of_u32(static_cast<uint32_t>(dim(tensors, "blocks.0.att.time_decay_w1", 1))));
      f.set(a + ".rescale_every_n_layers", GgufValue::of_u32(0));
    }

    auto get = [&](const std::string& n) -> const Tensor* {
      auto it = tensors.find(n);
      return it == tensors.end() ? nullptr : &it->second;
    };
    auto global = [&](const char* canon) -> Status {
      for (const Global& g : kGlobals)
        if (std::string(g.canon) == canon) {
          const Tensor* t = get(canon);
          if (!t) return map_error(where, std::string("missing tensor '") + canon + "'");
          add(g.gguf, *t);
          used.insert(canon);
        }
      return Status::success();
    };
    WKV_TRY_STATUS(global("emb.weight"));
    WKV_TRY_STATUS(global("blocks.0.ln0.weight"));
    WKV_TRY_STATUS(global("blocks.0.ln0.bias"));
    const std::span<const Row> rows = v7 ? std::span<const Row>(kV7Rows) : std::span<const Row>(kV6Rows);
    const std::span<const char* const> fused =
        v7 ? std::span<const char* const>(kV7Fused) : std::span<const char* const>(kV6Fused);
    for (int l = 0; l < L; ++l) {
      const std::string p = "blocks." + std::to_string(l) + ".", q = "blk." + std::to_string(l) + ".";
      // Fused token-shift lerps: [K, 1, 1, C] f32, component k in block k.
      std::vector<float> buf;
      for (const char* c : fused) {
        const Tensor* t = get(p + c);
        if (!t || t->numel() != C) return map_error(where, "missing or misshapen tensor '" + p + c + "'");
        const std::vector<float> v = to_f32(*t);
        buf.insert(buf.end(), v.begin(), v.end());
        used.insert(p + c);
      }
      add(q + "time_mix_lerp_fused.weight",
          Tensor::from_f32({static_cast<int64_t>(fused.size()), 1, 1, C}, std::move(buf)));
      for (const Row& r : rows) {
        std::string canon = p + r.canon;
        const bool v_lora = v7 && (std::string(r.canon) == "att.v0" || std::string(r.canon) == "att.v1" ||
                                   std::string(r.canon) == "att.v2");
        if (v_lora && l == 0) {
          // llama.cpp requires blk.0's (unused) value LoRA: copies of its iclr LoRA.
          used.insert(canon);
          canon = p + "att.a" + std::string(1, r.canon[5]);
        }
        const Tensor* t = get(canon);
        if (!t) return map_error(where, "missing tensor '" + canon + "'");
        auto x = apply(*t, r.xf, true, N, canon, where);
        if (!x) return x.error();
        add(q + r.gguf, std::move(*x));
        used.insert(canon);
      }
    }
    WKV_TRY_STATUS(global("ln_out.weight"));
    WKV_TRY_STATUS(global("ln_out.bias"));
    WKV_TRY_STATUS(global("head.weight"));
    for (const auto& [name, t] : tensors)
      if (!used.count(name))
        return map_error(where, "tensor '" + name + "' has no place in the " + a + " GGUF layout");
  }

  if (!opt.token_bytes.empty()) {
    if (static_cast<int64_t>(opt.token_bytes.size()) != V || opt.token_types.size() != opt.token_bytes.size())
      return map_error(where, "the vocabulary has " + std::to_string(opt.token_bytes.size()) +
                                  " tokens, the embedding " + std::to_string(V) + " rows");
    std::vector<std::string> toks;
    toks.reserve(opt.token_bytes.size());
    for (const auto& b : opt.token_bytes) toks.push_back(rwkv_escape_token(b));
    f.set("tokenizer.ggml.model", GgufValue::of_str("rwkv"));
    f.set("tokenizer.ggml.tokens", GgufValue::str_array(std::move(toks)));
    f.set("tokenizer.ggml.token_type", GgufValue::i32_array(opt.token_types));
    f.set("tokenizer.ggml.bos_token_id", GgufValue::of_u32(0));
    f.set("tokenizer.ggml.eos_token_id", GgufValue::of_u32(0));
    if (V > 261) f.set("tokenizer.ggml.eot_token_id", GgufValue::of_u32(261));
  }
  f.set("general.quantization_version", GgufValue::of_u32(2));
  gguf_update_file_type(f);
  return f;
}

Expected<TensorMap> gguf_to_rwkv(const GgufFile& f, const std::string& where) {
  const GgufValue* av = f.find("general.architecture");
  if (!av || av->type != GgufType::string)
    return map_error(where, "missing string metadata 'general.architecture'");
  const std::string a = av->str;
  TensorMap out;
  auto put = [&](const std::string& name, Tensor t) -> Status {
    if (!out.emplace(name, std::move(t)).second)
      return map_error(where, "two GGUF tensors map to '" + name + "'");
    return Status::success();
  };
  if (a == "wkv-rwkv4" || a == "wkv-rwkv5") {
    for (const auto& [name, t] : f.tensors) WKV_TRY_STATUS(put(name, t));
    return out;
  }
  if (a != "rwkv6" && a != "rwkv7")
    return map_error(where, "architecture '" + a.substr(0, 64) +
                                "' is not supported (wkv reads rwkv6, rwkv7, wkv-rwkv4, wkv-rwkv5)");
  const bool v7 = a == "rwkv7";
  auto L = get_u32(f, a + ".block_count", where);
  if (!L) return L.error();
  auto N = get_u32(f, a + ".wkv.head_size", where);
  if (!N) return N.error();
  auto R = v7 ? Expected<uint32_t>(0u) : get_u32(f, a + ".rescale_every_n_layers", where, 0u);
  if (!R) return R.error();
  if (*L > 4096) return map_error(where, a + ".block_count " + std::to_string(*L) + " is absurd");

  std::map<std::string, std::pair<const Row*, int>> by_gguf;
  const std::span<const Row> rows = v7 ? std::span<const Row>(kV7Rows) : std::span<const Row>(kV6Rows);
  const std::span<const char* const> fused =
      v7 ? std::span<const char* const>(kV7Fused) : std::span<const char* const>(kV6Fused);
  for (const auto& [gname, t] : f.tensors) {
    bool done = false;
    for (const Global& g : kGlobals)
      if (gname == g.gguf) {
        WKV_TRY_STATUS(put(g.canon, t));
        done = true;
      }
    if (done) continue;
    // blk.<layer>.<rest>
    int layer = -1;
    std::string rest;
    if (gname.rfind("blk.", 0) == 0) {
      const size_t dot = gname.find('.', 4);
      const std::string num = gname.substr(4, dot == std::string::npos ? 0 : dot - 4);
      if (!num.empty() && num.size() <= 4 && std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        layer = std::stoi(num);
        rest = gname.substr(dot + 1);
      }
    }
    if (layer < 0 || layer >= static_cast<int>(*L))
      return map_error(where, "unexpected tensor '" + gname + "' in an " + a + " file");
    const std::string p = "blocks." + std::to_string(layer) + ".";
    if (rest == "time_mix_lerp_fused.weight") {
      const int64_t K = static_cast<int64_t>(fused.size());
      if (t.shape.empty() || t.shape[0] != K || t.numel() % K != 0)
        return map_error(where, "tensor '" + gname + "' has shape " + t.shape_str() + ", expected [" +
                                    std::to_string(K) + ", 1, 1, C]");
      const int64_t C = t.numel() / K;
      const Tensor src = contiguous(plain(t));
      for (int64_t k = 0; k < K; ++k) {
        Tensor part = src;
        part.shape = {1, 1, C};
        part.strides = contiguous_strides(part.shape);
        part.data = src.data + static_cast<size_t>(k * C) * dtype_size(src.dtype);
        WKV_TRY_STATUS(put(p + fused[static_cast<size_t>(k)], std::move(part)));
      }
      continue;
    }
    const Row* row = nullptr;
    for (const Row& r : rows)
      if (rest == r.gguf) row = &r;
    if (!row) return map_error(where, "unexpected tensor '" + gname + "' in an " + a + " file");
    const std::string canon = p + row->canon;
    const std::string_view rc = row->canon;
    if (v7 && layer == 0 && (rc == "att.v0" || rc == "att.v1" || rc == "att.v2"))
      continue;  // copies of a0..a2, unused
    auto x = apply(t, row->xf, false, *N, gname, where);
    if (!x) return x.error();
    if (*R > 0 && (std::string(row->canon) == "att.output.weight" || std::string(row->canon) == "ffn.value.weight")) {
      // The converter divided these by 2^(layer / R); multiply back (exact: powers of two).
      const float scale = std::ldexp(1.0f, layer / static_cast<int>(*R));
      std::vector<float> v = to_f32(*x);
      for (float& e : v) e *= scale;
      *x = Tensor::from_f32(x->shape, std::move(v));
    }
    WKV_TRY_STATUS(put(canon, std::move(*x)));
  }
  return out;
}

Expected<TensorMap> load_gguf_from_memory(const std::string& name, std::span<const std::byte> bytes,
                                          std::shared_ptr<const void> owner) {
  auto f = parse_gguf_memory(name, bytes, std::move(owner));
  if (!f) return f.error();
  return gguf_to_rwkv(*f, name);
}

Expected<TensorMap> load_gguf(const std::string& path) {
  auto m = MappedFile::open(path);
  if (!m) return m.error();
  return load_gguf_from_memory(path, (*m)->bytes(), *m);
}

std::string rwkv_escape_token(std::string_view b) {
  // Python's bytes repr without the b'' around it.
  const bool has_sq = b.find('\'') != std::string_view::npos;
  const bool has_dq = b.find('"') != std::string_view::npos;
  const char quote = has_sq && !has_dq ? '"' : '\'';
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (char ch : b) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == static_cast<unsigned char>(quote)) (out += '\\') += ch;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string rwkv_unescape_token(std::string_view s) {
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char e = s[++i];
    if (e == 't') out += '\t';
    else if (e == 'n') out += '\n';
    else if (e == 'r') out += '\r';
    else if (e == 'x' && i + 2 < s.size() + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out += e;
    }
  }
  return out;
}

Expected<std::optional<GgufVocab>> gguf_vocab(const GgufFile& f, const std::string& where) {
  const GgufValue* model = f.find("tokenizer.ggml.model");
  if (!model) return std::optional<GgufVocab>();
  if (model->type != GgufType::string)
    return map_error(where, "tokenizer.ggml.model is not a string");
  if (model->str != "rwkv") return std::optional<GgufVocab>();
  const GgufValue* toks = f.find("tokenizer.ggml.tokens");
  if (!toks || toks->type != GgufType::array || toks->elem != GgufType::string || toks->count == 0)
    return map_error(where, "tokenizer.ggml.tokens is missing or not an array of strings");
  GgufVocab v;
  v.tokens.reserve(toks->strs.size());
  std::set<std::string_view> seen;
  for (size_t i = 0; i < toks->strs.size(); ++i) {
    if (!seen.insert(toks->strs[i]).second)
      return map_error(where, "tokenizer.ggml.tokens: token " + std::to_string(i) + " is a duplicate");
    v.tokens.push_back(rwkv_unescape_token(toks->strs[i]));
  }
  v.types.assign(v.tokens.size(), 1);
  if (const GgufValue* ty = f.find("tokenizer.ggml.token_type")) {
    if (ty->type != GgufType::array || ty->elem != GgufType::i32 || ty->count < v.tokens.size())
      return map_error(where, "tokenizer.ggml.token_type is not an i32 array as long as the tokens");
    std::memcpy(v.types.data(), ty->raw.data(), v.types.size() * 4);
  }
  return std::optional<GgufVocab>(std::move(v));
}

Tensor cast_tensor(const Tensor& t, DType to) {
  if (t.dtype == to) return contiguous(t);
  const std::vector<float> v = to_f32(t);
  if (to == DType::f32) return Tensor::from_f32(t.shape, v);
  std::vector<std::byte> out(dtype_bytes(to, v.size()));
  if (dtype_is_quantized(to)) {
    WKV_ASSERT(!t.shape.empty() && t.shape.back() % dtype_info(to).block == 0);
    quant::quantize_row(to, v.data(), out.data(), v.size());
  } else {
    WKV_ASSERT(to == DType::f16 || to == DType::bf16);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = to == DType::f16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return owned_bytes(to, t.shape, std::move(out));
}

DType quant_type_for_row(DType want, int64_t cols) {
  if (cols % dtype_info(want).block == 0) return want;
  switch (want) {
    case DType::q2_k:
    case DType::q3_k: return DType::q4_0;
    case DType::q4_k: return DType::q5_0;
    case DType::q5_k: return DType::q5_1;
    case DType::q6_k: return DType::q8_0;
    default: return want;
  }
}

bool gguf_should_quantize(std::string_view name, const Tensor& t, bool quantize_head) {
  if (t.shape.size() != 2 || t.shape[0] < 2 || t.shape[1] % 32 != 0) return false;
  if (name == "output.weight" || name == "head.weight") return quantize_head;
  static constexpr std::string_view kLinear[] = {
      "time_mix_receptance.weight", "time_mix_key.weight", "time_mix_value.weight",
      "time_mix_output.weight", "time_mix_gate.weight", "channel_mix_key.weight",
      "channel_mix_value.weight", "channel_mix_receptance.weight",
      "att.receptance.weight", "att.key.weight", "att.value.weight", "att.output.weight",
      "att.gate.weight", "ffn.key.weight", "ffn.value.weight", "ffn.receptance.weight"};
  for (std::string_view s : kLinear)
    if (name.size() > s.size() && name.substr(name.size() - s.size()) == s &&
        name[name.size() - s.size() - 1] == '.')
      return true;
  return false;
}

}  // namespace wkv
