// rwkv.cpp model files (.bin, "ggmf" magic): every record validated, then mapped back to the
// official checkpoint's names, shapes and parameterisation, so the TensorMap is the one
// model.pth would give (up to FP16 / quantization rounding of the stored values).
//
// Layout (all little-endian):
//   header: int32 magic 0x67676d66 ("fmgg" as bytes), version (100 or 101), n_vocab, n_embed,
//           n_layer, data_type
//   records until EOF: int32 dim_count (1..4), key_length (1..1024), data_type;
//           int32 dims[dim_count], innermost first (REVERSED relative to PyTorch);
//           key (UTF-8, no terminator); data (packed, no padding, no alignment).
//   data types: 0 FP32, 1 FP16, 2 Q4_0, 3 Q4_1, 7 Q5_0, 8 Q5_1, 9 Q8_0. 4 (Q4_1_O), 5 (Q4_2)
//           and 6 (Q4_3) are removed legacy formats and are rejected, as are quantized tensors
//           in version-100 files (ggml changed every block layout before version 101).
//   Quantized tensors are rows of 32-value blocks along the innermost dimension, which must
//   therefore be a multiple of 32 (block layouts and formulas: core/quant.hpp).
//
// Storage: FP32 records are used in place from the mapping when 4-byte aligned (copied
// otherwise); FP16 records stay f16 (in place when 2-byte aligned); quantized records stay
// quantized (dtypes q4_0, q4_1, q5_0, q5_1, q8_0 of core/quant.hpp, ggml's block layouts) and
// are used in place (block kernels read them unaligned). A record that is transformed below
// (dequantized exactly by to_f32 where it is quantized) becomes an owned f32 tensor.
//
// Version (from names alone, as rwkv.cpp's converter decided it): any `att.x_rwkvag`,
// `att.k_k` or `att.r_k` -> v7; else any `.time_maa` -> v6; else any `att.ln_x.` -> v5.x;
// else v4.
//
// Undoing rwkv.cpp's converter (python/convert_pytorch_to_ggml.py), which squeezes every
// `.time_*` tensor and then:
//   all:  `*.time_mix_{k,v,r,g}`, `*.time_maa_{x,w,k,v,r,g}` [C] -> [1, 1, C].
//   v4:   `att.time_decay` stored as -exp(td)           -> td = log(-x), shape [C];
//         `att.time_first` unchanged, shape [C].
//   v5.x: `att.time_decay` stored as exp(-exp(td)), [H,1,1] (v5.0) or [H,N,1] (v5.2; v5.1,
//         which rwkv.cpp treats as v5.2, gives [H,1]) -> td = log(-log(x)), trailing 1-dims
//         dropped: [H] or [H, N];
//         `att.time_first` stored as exp(tf), [H,1,1]   -> tf = log(x), [H];
//         `att.time_faaaa` [H,N,1] / [H,1]               -> [H, N] / [H] (values unchanged).
//   v6:   `att.time_maa_w1` [5D, C] -> transposed to [C, 5D];
//         `att.time_decay_w1` [D, C] -> [C, D]; `att.time_decay_w2` [C, D] -> [D, C];
//         `att.time_maa_w2` [5, C, D] -> last two dims swapped: [5, D, C];
//         `att.time_decay` [H, N, 1] -> [1, 1, C] (values unchanged);
//         `att.time_faaaa` [H, N, 1] -> [H, N].
//   v7:   `att.x_rwkvag` [6, 1, C] -> `att.x_r`, `x_w`, `x_k`, `x_v`, `x_a`, `x_g`, each
//         [1, 1, C] (the converter concatenates them in checkpoint order, r w k v a g);
//         `att.{w,a,v,g}1` [D, C] -> [C, D]; `att.{w,a,v,g}2` [C, D] -> [D, C];
//         `att.{w0,a0,v0,k_k,k_a,x_*}` and `ffn.x_k`, if stored squeezed to [C] -> [1, 1, C].
// Stored values outside the range of the converter's functions (v4 decay > 0, v5 decay
// outside [0, 1], v5 time_first < 0, NaN) are errors. Limitation: a v5.2 file with ONE head
// (time_decay [1, N] squeezed to [N, 1]) cannot be told from v5.0 with N heads of size 1 and
// comes back as [N].
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/quant.hpp"
#include "formats/formats.hpp"

namespace wkv {

namespace {

static_assert(std::endian::native == std::endian::little, "rwkv.cpp files are read in place");

constexpr uint32_t kMagic = 0x67676d66u;
constexpr size_t kHeaderBytes = 24;
constexpr int32_t kMaxDims = 4;  // ggml's GGML_MAX_DIMS: ne[4]
constexpr int32_t kMaxKeyBytes = 1024;
constexpr int kBlockValues = 32;  // every ggml block type read here (QK4_0 .. QK8_0)

// ggml's block types are core/quant.hpp's Block* structs (byte for byte, pinned there by
// static_assert); quantized records are handed out as those dtypes without conversion.

enum class Code : int32_t { f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 7, q5_1 = 8, q8_0 = 9 };

struct TypeInfo {
  Code code;
  const char* name;
  size_t unit_bytes;  // per element (FP32/FP16) or per 32-value block
  bool quantized;
};

constexpr TypeInfo kTypes[] = {
    {Code::f32, "FP32", 4, false},
    {Code::f16, "FP16", 2, false},
    {Code::q4_0, "Q4_0", sizeof(quant::BlockQ4_0), true},
    {Code::q4_1, "Q4_1", sizeof(quant::BlockQ4_1), true},
    {Code::q5_0, "Q5_0", sizeof(quant::BlockQ5_0), true},
    {Code::q5_1, "Q5_1", sizeof(quant::BlockQ5_1), true},
    {Code::q8_0, "Q8_0", sizeof(quant::BlockQ8_0), true},
};

// The type for a data_type code, or why it is not readable.
const TypeInfo* type_info(int32_t code, std::string* why) {
  for (const TypeInfo& t : kTypes)
    if (static_cast<int32_t>(t.code) == code) return &t;
  switch (code) {
    case 4:
      *why =
          "data type 4 (Q4_1_O) is a removed legacy format (rwkv.cpp cannot load it either; "
          "re-convert the model)";
      break;
    case 5:
      *why = "data type 5 (Q4_2) is a removed legacy format (re-quantize the model)";
      break;
    case 6:
      *why = "data type 6 (Q4_3) is a removed legacy format (re-quantize the model)";
      break;
    default:
      *why = "unknown data type " + std::to_string(code) +
             " (supported: 0 FP32, 1 FP16, 2 Q4_0, 3 Q4_1, 7 Q5_0, 8 Q5_1, 9 Q8_0)";
  }
  return nullptr;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;  // no control characters in tensor names
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    const uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

int32_t read_i32(const std::byte* p) {
  uint32_t u = 0;
  for (int i = 3; i >= 0; --i) u = (u << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<int32_t>(u);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  Tensor t;
  t.shape = shape;
  return t.shape_str();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

struct Record {
  std::string key;
  const TypeInfo* type = nullptr;
  std::vector<int64_t> shape;  // PyTorch order
  uint64_t numel = 0;
  std::span<const std::byte> data;
  size_t index = 0;   // record number, from 0
  size_t offset = 0;  // of the record in the file
};

enum class Arch { v4, v5, v6, v7 };

class RwkvCppLoader {
 public:
  RwkvCppLoader(const std::string& name, std::span<const std::byte> bytes,
                std::shared_ptr<const void> owner)
      : name_(name), bytes_(bytes), owner_(std::move(owner)) {}

  Expected<TensorMap> load();

 private:
  Error err(const std::string& m) const { return Error{name_ + ": rwkv.cpp model file: " + m}; }
  Error bad(const Record& r, const std::string& m) const {
    return err("tensor '" + r.key + "' (record " + std::to_string(r.index) + " at offset " +
               std::to_string(r.offset) + "): " + m);
  }
  Expected<Record> record(size_t index, size_t* pos) const;
  Tensor decode(const Record& r) const;
  Status add(TensorMap& out, const Record& r, std::string key, Tensor t) const;
  Status canonical(TensorMap& out, const Record& r, Arch arch) const;

  const std::string& name_;
  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> owner_;
  int32_t version_ = 0;
};

Expected<Record> RwkvCppLoader::record(size_t index, size_t* pos) const {
  Record r;
  r.index = index;
  r.offset = *pos;
  const std::string where =
      "record " + std::to_string(index) + " at offset " + std::to_string(*pos);
  auto fail = [&](const std::string& m) { return err(where + ": " + m); };
  const size_t left = bytes_.size() - *pos;
  if (left < 12)
    return fail("truncated record header (" + std::to_string(left) +
                " of 12 bytes before the end of the file)");
  const std::byte* p = bytes_.data() + *pos;
  const int32_t n_dims = read_i32(p), key_len = read_i32(p + 4), code = read_i32(p + 8);
  if (n_dims < 1 || n_dims > kMaxDims)
    return fail("dimension count " + std::to_string(n_dims) + " is outside 1.." +
                std::to_string(kMaxDims));
  if (key_len < 1 || key_len > kMaxKeyBytes)
    return fail("key length " + std::to_string(key_len) + " is outside 1.." +
                std::to_string(kMaxKeyBytes));
  std::string why;
  r.type = type_info(code, &why);
  if (!r.type) return fail(why);
  const size_t head = 12 + 4 * static_cast<size_t>(n_dims) + static_cast<size_t>(key_len);
  if (left < head)
    return fail("truncated: dims and key need " + std::to_string(head) + " bytes, " +
                std::to_string(left) + " left in the file");
  r.key.assign(reinterpret_cast<const char*>(p + 12 + 4 * n_dims), static_cast<size_t>(key_len));
  if (!valid_utf8(r.key)) return fail("the key is not valid UTF-8 text");
  auto bad_rec = [&](const std::string& m) { return bad(r, m); };

  r.shape.resize(static_cast<size_t>(n_dims));
  r.numel = 1;
  bool overflow = false;
  for (int32_t i = 0; i < n_dims; ++i) {
    const int32_t d = read_i32(p + 12 + 4 * i);
    if (d < 1) return bad_rec("dimension " + std::to_string(d) + " is not positive");
    r.shape[static_cast<size_t>(n_dims - 1 - i)] = d;
    overflow |= !checked_mul(r.numel, static_cast<uint64_t>(d), &r.numel);
  }
  const std::string desc = std::string(r.type->name) + " " + shape_str(r.shape);
  if (r.type->quantized && version_ < 101)
    return bad_rec(desc +
                   ": quantized tensors of version-100 files use a block layout that ggml "
                   "has since changed; re-quantize the model with current rwkv.cpp");
  uint64_t units = r.numel;
  if (r.type->quantized) {
    if (r.shape.back() % kBlockValues != 0)
      return bad_rec(desc + ": the innermost dimension is not a multiple of " +
                     std::to_string(kBlockValues) + " (the quantization block size)");
    units = r.numel / kBlockValues;
  }
  uint64_t nbytes = 0;
  const size_t avail = left - head;
  overflow |= !checked_mul(units, r.type->unit_bytes, &nbytes);
  if (overflow || nbytes > avail)
    return bad_rec(desc + " needs " +
                   (overflow ? std::string("more than 2^64") : std::to_string(nbytes)) +
                   " data bytes but only " + std::to_string(avail) + " are left in the file");
  r.data = bytes_.subspan(*pos + head, static_cast<size_t>(nbytes));
  *pos += head + static_cast<size_t>(nbytes);
  return r;
}

// The record as stored: f32 (in place or copied), f16 (in place or copied), or quantized blocks
// (in place).
Tensor RwkvCppLoader::decode(const Record& r) const {
  Tensor t;
  t.shape = r.shape;
  t.strides = contiguous_strides(r.shape);
  if (!r.type->quantized) {
    t.dtype = r.type->code == Code::f32 ? DType::f32 : DType::f16;
    t.data = r.data.data();
    t.owner = owner_;
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0) {
      auto copy = std::make_shared<std::vector<std::byte>>(r.data.begin(), r.data.end());
      t.data = copy->data();
      t.owner = copy;
    }
    return t;
  }
  switch (r.type->code) {
    case Code::q4_0: t.dtype = DType::q4_0; break;
    case Code::q4_1: t.dtype = DType::q4_1; break;
    case Code::q5_0: t.dtype = DType::q5_0; break;
    case Code::q5_1: t.dtype = DType::q5_1; break;
    case Code::q8_0: t.dtype = DType::q8_0; break;
    case Code::f32:
    case Code::f16:
      WKV_ASSERT(false);
  }
  t.data = r.data.data();
  t.owner = owner_;
  return t;
}

Status RwkvCppLoader::add(TensorMap& out, const Record& r, std::string key, Tensor t) const {
  if (out.count(key)) return bad(r, "gives tensor '" + key + "', which the file already holds");
  out.emplace(std::move(key), std::move(t));
  return Status::success();
}

// Same data, another shape with the same element count.
Tensor reshaped(Tensor t, std::vector<int64_t> shape) {
  t.strides = contiguous_strides(shape);
  t.shape = std::move(shape);
  return t;
}

// Owned f32 tensor of `shape` whose element i is f(i).
template <class F>
Tensor computed(const std::vector<int64_t>& shape, size_t n, F&& f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = f(i);
  return Tensor::from_f32(shape, std::move(v));
}

std::vector<int64_t> drop_trailing_ones(std::vector<int64_t> s) {
  while (s.size() > 1 && s.back() == 1) s.pop_back();
  return s;
}

Status RwkvCppLoader::canonical(TensorMap& out, const Record& r, Arch arch) const {
  const std::string& k = r.key;
  const int64_t n = static_cast<int64_t>(r.numel);
  const size_t nz = static_cast<size_t>(r.numel);
  const std::string shape = shape_str(r.shape);
  Tensor t = decode(r);

  // Swapped last two dims of a 2-D or 3-D tensor (the only transposes the converter does).
  auto transposed = [&]() -> Expected<Tensor> {
    if (r.shape.size() != 2 && r.shape.size() != 3)
      return bad(r, "shape " + shape + " should be 2-D (or 3-D) to be transposed back");
    const std::vector<float> v = to_f32(t);
    const size_t rows = static_cast<size_t>(r.shape[r.shape.size() - 2]);
    const size_t cols = static_cast<size_t>(r.shape.back());
    std::vector<int64_t> s = r.shape;
    std::swap(s[s.size() - 2], s[s.size() - 1]);
    return computed(s, nz, [&](size_t i) {
      const size_t m = i / (rows * cols), rc = i % (rows * cols);
      const size_t row = rc / rows, col = rc % rows;  // output [cols, rows]
      return v[m * rows * cols + col * cols + row];
    });
  };
  // Values through `f`, each checked by `ok` (`range` describes the allowed range).
  auto mapped = [&](std::vector<int64_t> s, bool (*ok)(float), double (*f)(double),
                    const char* range, const char* stored) -> Expected<Tensor> {
    const std::vector<float> v = to_f32(t);
    for (size_t i = 0; i < v.size(); ++i)
      if (!ok(v[i]))
        return bad(r, "value " + std::to_string(v[i]) + " at index " + std::to_string(i) +
                          " is outside " + range + " (rwkv.cpp stores " + stored + ")");
    return computed(s, nz,
                    [&](size_t i) { return static_cast<float>(f(static_cast<double>(v[i]))); });
  };
  auto put = [&](Expected<Tensor> e) -> Status {
    if (!e) return e.error();
    return add(out, r, k, std::move(*e));
  };
  const std::vector<int64_t> row_vec = {1, 1, n};

  // Mixing vectors of every version: [C] -> [1, 1, C].
  for (const char* m : {".time_mix_k", ".time_mix_v", ".time_mix_r", ".time_mix_g", ".time_maa_x",
                        ".time_maa_w", ".time_maa_k", ".time_maa_v", ".time_maa_r", ".time_maa_g"})
    if (ends_with(k, m)) return add(out, r, k, reshaped(std::move(t), row_vec));

  switch (arch) {
    case Arch::v4:
      if (ends_with(k, ".time_decay"))
        return put(mapped(
            {n}, [](float x) { return x <= 0.0f; }, [](double x) { return std::log(-x); },
            "(-inf, 0]", "-exp(time_decay)"));
      if (ends_with(k, ".time_first")) return add(out, r, k, reshaped(std::move(t), {n}));
      break;
    case Arch::v5:
      if (ends_with(k, ".time_decay"))
        return put(mapped(
            drop_trailing_ones(r.shape), [](float x) { return x >= 0.0f && x <= 1.0f; },
            [](double x) { return std::log(-std::log(x)); }, "[0, 1]", "exp(-exp(time_decay))"));
      if (ends_with(k, ".time_first"))
        return put(mapped(
            drop_trailing_ones(r.shape), [](float x) { return x >= 0.0f; },
            [](double x) { return std::log(x); }, "[0, inf)", "exp(time_first)"));
      if (ends_with(k, ".time_faaaa"))
        return add(out, r, k, reshaped(std::move(t), drop_trailing_ones(r.shape)));
      break;
    case Arch::v6:
      if (ends_with(k, ".time_maa_w1") || ends_with(k, ".time_decay_w1") ||
          ends_with(k, ".time_decay_w2")) {
        if (r.shape.size() != 2) return bad(r, "shape " + shape + " should be 2-D");
        return put(transposed());
      }
      if (ends_with(k, ".time_maa_w2")) {
        if (r.shape.size() != 3) return bad(r, "shape " + shape + " should be 3-D");
        return put(transposed());
      }
      if (ends_with(k, ".time_decay")) return add(out, r, k, reshaped(std::move(t), row_vec));
      if (ends_with(k, ".time_faaaa"))
        return add(out, r, k, reshaped(std::move(t), drop_trailing_ones(r.shape)));
      break;
    case Arch::v7: {
      if (ends_with(k, "att.x_rwkvag")) {
        if (r.shape.size() < 2 || r.shape[0] != 6)
          return bad(r, "shape " + shape + " should be [6, 1, C] (x_r, x_w, x_k, x_v, x_a, x_g)");
        const std::string prefix = k.substr(0, k.size() - std::string_view("rwkvag").size());
        const std::vector<float> v = to_f32(t);
        const size_t c = nz / 6;
        const char* parts[] = {"r", "w", "k", "v", "a", "g"};
        for (size_t i = 0; i < 6; ++i) {
          std::vector<float> part(v.begin() + static_cast<ptrdiff_t>(i * c),
                                  v.begin() + static_cast<ptrdiff_t>((i + 1) * c));
          WKV_TRY_STATUS(add(out, r, prefix + parts[i],
                             Tensor::from_f32({1, 1, static_cast<int64_t>(c)}, std::move(part))));
        }
        return Status::success();
      }
      for (const char* m :
           {"att.w1", "att.w2", "att.a1", "att.a2", "att.v1", "att.v2", "att.g1", "att.g2"})
        if (ends_with(k, m)) {
          if (r.shape.size() != 2) return bad(r, "shape " + shape + " should be 2-D");
          return put(transposed());
        }
      const bool vector = contains(k, "att.x_") || ends_with(k, "ffn.x_k") ||
                          ends_with(k, "att.w0") || ends_with(k, "att.a0") ||
                          ends_with(k, "att.v0") || ends_with(k, "att.k_k") ||
                          ends_with(k, "att.k_a");
      if (vector && r.shape.size() == 1) return add(out, r, k, reshaped(std::move(t), row_vec));
      break;
    }
  }
  return add(out, r, k, std::move(t));
}

Expected<TensorMap> RwkvCppLoader::load() {
  if (bytes_.size() < kHeaderBytes)
    return err("file too small (" + std::to_string(bytes_.size()) +
               " bytes) for the 24-byte header");
  const std::byte* h = bytes_.data();
  const uint32_t magic = static_cast<uint32_t>(read_i32(h));
  if (magic != kMagic) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    return err(std::string("bad magic ") + hex + " (expected 0x67676d66)");
  }
  version_ = read_i32(h + 4);
  if (version_ != 100 && version_ != 101)
    return err("unsupported file version " + std::to_string(version_) + " (supported: 100, 101)");
  const int32_t n_vocab = read_i32(h + 8), n_embed = read_i32(h + 12), n_layer = read_i32(h + 16);
  if (n_vocab < 1 || n_embed < 1 || n_layer < 1)
    return err("header has n_vocab " + std::to_string(n_vocab) + ", n_embed " +
               std::to_string(n_embed) + ", n_layer " + std::to_string(n_layer) +
               "; all must be positive");
  std::string why;
  const TypeInfo* file_type = type_info(read_i32(h + 20), &why);
  if (!file_type) return err("header: " + why);
  if (file_type->quantized && version_ < 101)
    return err(std::string("header: a version-100 file of type ") + file_type->name +
               " uses a quantization layout that ggml has since changed; re-quantize the model "
               "with current rwkv.cpp");

  std::vector<Record> records;
  size_t pos = kHeaderBytes;
  while (pos < bytes_.size()) {
    auto r = record(records.size(), &pos);
    if (!r) return r.error();
    records.push_back(std::move(*r));
  }
  if (records.empty()) return err("the file holds no tensors");

  Arch arch = Arch::v4;
  bool v6 = false, v5 = false;
  for (const Record& r : records) {
    const std::string& k = r.key;
    if (ends_with(k, "att.x_rwkvag") || ends_with(k, "att.k_k") || ends_with(k, "att.r_k")) {
      arch = Arch::v7;
      break;
    }
    v6 |= contains(k, ".time_maa");
    v5 |= contains(k, "att.ln_x.");
  }
  if (arch != Arch::v7) arch = v6 ? Arch::v6 : v5 ? Arch::v5 : Arch::v4;

  TensorMap out;
  for (const Record& r : records) {
    if (r.key == "emb.weight" &&
        (r.shape.size() != 2 || r.shape[0] != n_vocab || r.shape[1] != n_embed))
      return bad(r, "shape " + shape_str(r.shape) + " disagrees with the header's n_vocab " +
                        std::to_string(n_vocab) + " and n_embed " + std::to_string(n_embed));
    WKV_TRY_STATUS(canonical(out, r, arch));
  }
  return out;
}

}  // namespace

Expected<TensorMap> load_rwkvcpp_from_memory(const std::string& name,
                                             std::span<const std::byte> bytes,
                                             std::shared_ptr<const void> owner) {
  RwkvCppLoader loader(name, bytes, std::move(owner));
  return loader.load();
}

Expected<TensorMap> load_rwkvcpp(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f) return f.error();
  return load_rwkvcpp_from_memory(path, (*f)->bytes(), *f);
}

}  // namespace wkv
