// The GGUF container: a bounds-checked reader (every count and length checked against the bytes
// left before anything is allocated) and a writer. See gguf.hpp for the layout.
#include "formats/gguf.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "core/quant.hpp"

namespace wkv {

namespace {

constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxAlignment = 1u << 20;
constexpr size_t kMaxNameBytes = 64;  // GGML_MAX_NAME, including the NUL: names are < 64 bytes
constexpr uint32_t kMaxDims = 4;      // GGML_MAX_DIMS

struct TypeRow {
  uint32_t id;
  const char* name;
  std::optional<DType> dtype;
};
// ggml's type ids (ggml.h); the ones wkv reads map to a DType.
constexpr TypeRow kGgmlTypes[] = {
    {0, "F32", DType::f32},   {1, "F16", DType::f16},   {2, "Q4_0", DType::q4_0},
    {3, "Q4_1", DType::q4_1}, {6, "Q5_0", DType::q5_0}, {7, "Q5_1", DType::q5_1},
    {8, "Q8_0", DType::q8_0}, {9, "Q8_1", {}},          {10, "Q2_K", DType::q2_k},
    {11, "Q3_K", DType::q3_k}, {12, "Q4_K", DType::q4_k}, {13, "Q5_K", DType::q5_k},
    {14, "Q6_K", DType::q6_k}, {15, "Q8_K", {}},         {16, "IQ2_XXS", {}},
    {17, "IQ2_XS", {}},       {18, "IQ3_XXS", {}},      {19, "IQ1_S", {}},
    {20, "IQ4_NL", {}},       {21, "IQ3_S", {}},        {22, "IQ2_S", {}},
    {23, "IQ4_XS", {}},       {24, "I8", {}},           {25, "I16", {}},
    {26, "I32", {}},          {27, "I64", {}},          {28, "F64", {}},
    {29, "IQ1_M", {}},        {30, "BF16", DType::bf16}, {34, "TQ1_0", {}},
    {35, "TQ2_0", {}},
};

const TypeRow* ggml_row(uint32_t id) {
  for (const TypeRow& r : kGgmlTypes)
    if (r.id == id) return &r;
  return nullptr;
}

// Bytes one scalar of a metadata type takes (0 for string/array).
size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    default: return 0;
  }
}

bool is_signed(GgufType t) {
  return t == GgufType::i8 || t == GgufType::i16 || t == GgufType::i32 || t == GgufType::i64;
}
bool is_float(GgufType t) { return t == GgufType::f32 || t == GgufType::f64; }

// Alignment a tensor's data pointer needs to be read in place.
size_t elem_align(DType t) { return dtype_is_quantized(t) ? 2 : dtype_size(t); }

std::string hex_name(std::string_view s) {
  // Names go into messages: keep them printable and short.
  std::string out;
  for (char c : s.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) out += c;
    else {
      static const char* d = "0123456789abcdef";
      out += "\\x";
      out += d[u >> 4];
      out += d[u & 15];
    }
  }
  if (s.size() > 80) out += "...";
  return out;
}

class Reader {
 public:
  Reader(const std::string& name, std::span<const std::byte> b) : name_(name), b_(b) {}

  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }
  Error err(const std::string& m, size_t at) const {
    return Error{name_ + ": gguf: at byte " + std::to_string(at) + ": " + m};
  }
  Error err(const std::string& m) const { return err(m, pos_); }

  Status need(size_t n, const char* what) {
    if (n > left())
      return err(std::string("file truncated: ") + what + " needs " + std::to_string(n) +
                 " bytes, " + std::to_string(left()) + " left");
    return Status::success();
  }
  template <class T>
  Expected<T> get(const char* what) {
    WKV_TRY_STATUS(need(sizeof(T), what));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));  // little-endian host (x86-64, aarch64)
    pos_ += sizeof(T);
    return v;
  }
  Expected<std::string> str(const char* what) {
    const size_t at = pos_;
    auto n = get<uint64_t>(what);
    if (!n) return n.error();
    if (*n > left())
      return err(std::string(what) + ": string length " + std::to_string(*n) +
                     " runs past the end of the file (" + std::to_string(left()) + " bytes left)",
                 at);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(*n));
    pos_ += static_cast<size_t>(*n);
    return s;
  }
  const std::byte* at(size_t p) const { return b_.data() + p; }
  void skip(size_t n) { pos_ += std::min(n, left()); }

 private:
  const std::string& name_;
  std::span<const std::byte> b_;
  size_t pos_ = 0;
};

Expected<GgufValue> read_value(Reader& r, GgufType t, const std::string& key, bool in_array) {
  GgufValue v;
  v.type = t;
  const size_t at = r.pos();
  auto bad = [&](const std::string& m) { return r.err("key '" + hex_name(key) + "': " + m, at); };
  switch (t) {
    case GgufType::u8: { auto x = r.get<uint8_t>("u8"); if (!x) return x.error(); v.u = *x; break; }
    case GgufType::u16: { auto x = r.get<uint16_t>("u16"); if (!x) return x.error(); v.u = *x; break; }
    case GgufType::u32: { auto x = r.get<uint32_t>("u32"); if (!x) return x.error(); v.u = *x; break; }
    case GgufType::u64: { auto x = r.get<uint64_t>("u64"); if (!x) return x.error(); v.u = *x; break; }
    case GgufType::i8: { auto x = r.get<int8_t>("i8"); if (!x) return x.error(); v.i = *x; break; }
    case GgufType::i16: { auto x = r.get<int16_t>("i16"); if (!x) return x.error(); v.i = *x; break; }
    case GgufType::i32: { auto x = r.get<int32_t>("i32"); if (!x) return x.error(); v.i = *x; break; }
    case GgufType::i64: { auto x = r.get<int64_t>("i64"); if (!x) return x.error(); v.i = *x; break; }
    case GgufType::f32: { auto x = r.get<float>("f32"); if (!x) return x.error(); v.f = *x; break; }
    case GgufType::f64: { auto x = r.get<double>("f64"); if (!x) return x.error(); v.f = *x; break; }
    case GgufType::boolean: {
      auto x = r.get<uint8_t>("bool");
      if (!x) return x.error();
      if (*x > 1) return bad("bool value " + std::to_string(*x) + " is not 0 or 1");
      v.u = *x;
      break;
    }
    case GgufType::string: {
      auto s = r.str("string value");
      if (!s) return bad(s.error().message);
      v.str = std::move(*s);
      break;
    }
    case GgufType::array: {
      if (in_array) return bad("arrays of arrays are not allowed");
      auto et = r.get<uint32_t>("array element type");
      if (!et) return et.error();
      if (*et > 12) return bad("unknown array element type " + std::to_string(*et));
      v.elem = static_cast<GgufType>(*et);
      if (v.elem == GgufType::array) return bad("arrays of arrays are not allowed");
      auto n = r.get<uint64_t>("array length");
      if (!n) return n.error();
      // Every element takes at least one byte (a string at least 8): bound the count by the
      // bytes left before reserving anything.
      const uint64_t min_elem = v.elem == GgufType::string ? 8 : scalar_size(v.elem);
      if (*n > r.left() / min_elem)
        return bad("array of " + std::to_string(*n) + " " + std::string(gguf_type_name(v.elem)) +
                   " elements runs past the end of the file (" + std::to_string(r.left()) +
                   " bytes left)");
      v.count = *n;
      if (v.elem == GgufType::string) {
        v.strs.reserve(static_cast<size_t>(*n));
        for (uint64_t k = 0; k < *n; ++k) {
          auto s = r.str("array string");
          if (!s) return bad("element " + std::to_string(k) + ": " + s.error().message);
          v.strs.push_back(std::move(*s));
        }
      } else {
        const size_t bytes = static_cast<size_t>(*n) * scalar_size(v.elem);
        const size_t start = r.pos();
        if (v.elem == GgufType::boolean)
          for (size_t k = 0; k < bytes; ++k)
            if (static_cast<uint8_t>(*r.at(start + k)) > 1)
              return bad("bool array element " + std::to_string(k) + " is not 0 or 1");
        const auto* p = reinterpret_cast<const uint8_t*>(r.at(start));
        v.raw.assign(p, p + bytes);
        r.skip(bytes);
      }
      break;
    }
    default:
      return bad("unknown value type " + std::to_string(static_cast<uint32_t>(t)));
  }
  return v;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",   "u16",    "i16",   "u32",
                                               "i32", "f32",  "bool",   "string", "array",
                                               "u64", "i64",  "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : std::string_view("unknown");
}

GgufValue GgufValue::of_u32(uint32_t x) { GgufValue v; v.type = GgufType::u32; v.u = x; return v; }
GgufValue GgufValue::of_i32(int32_t x) { GgufValue v; v.type = GgufType::i32; v.i = x; return v; }
GgufValue GgufValue::of_f32(float x) { GgufValue v; v.type = GgufType::f32; v.f = x; return v; }
GgufValue GgufValue::of_bool(bool x) { GgufValue v; v.type = GgufType::boolean; v.u = x; return v; }
GgufValue GgufValue::of_str(std::string x) {
  GgufValue v;
  v.type = GgufType::string;
  v.str = std::move(x);
  return v;
}
GgufValue GgufValue::scalar(GgufType t, double x) {
  GgufValue v;
  v.type = t;
  if (is_float(t)) v.f = t == GgufType::f32 ? static_cast<float>(x) : x;
  else if (is_signed(t)) v.i = static_cast<int64_t>(x);
  else v.u = static_cast<uint64_t>(x);
  return v;
}
GgufValue GgufValue::str_array(std::vector<std::string> x) {
  GgufValue v;
  v.type = GgufType::array;
  v.elem = GgufType::string;
  v.count = x.size();
  v.strs = std::move(x);
  return v;
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& x) {
  std::vector<uint8_t> b(x.size() * 4);
  if (!x.empty()) std::memcpy(b.data(), x.data(), b.size());
  return raw_array(GgufType::i32, x.size(), std::move(b));
}
GgufValue GgufValue::raw_array(GgufType elem, uint64_t count, std::vector<uint8_t> bytes) {
  GgufValue v;
  v.type = GgufType::array;
  v.elem = elem;
  v.count = count;
  v.raw = std::move(bytes);
  return v;
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case GgufType::string: return str == o.str;
    case GgufType::array:
      return elem == o.elem && count == o.count && strs == o.strs && raw == o.raw;
    case GgufType::f32: case GgufType::f64:
      return f == o.f || (std::isnan(f) && std::isnan(o.f));
    default: return is_signed(type) ? i == o.i : u == o.u;
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

const Tensor* GgufFile::tensor(std::string_view name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void GgufFile::set(const std::string& key, GgufValue v) {
  for (auto& [k, old] : metadata)
    if (k == key) {
      old = std::move(v);
      return;
    }
  metadata.emplace_back(key, std::move(v));
}

std::optional<uint32_t> ggml_type_of(DType t) {
  for (const TypeRow& r : kGgmlTypes)
    if (r.dtype && *r.dtype == t) return r.id;
  return std::nullopt;
}

Expected<GgufFile> parse_gguf_memory(const std::string& name, std::span<const std::byte> bytes,
                                     std::shared_ptr<const void> owner) {
  Reader r(name, bytes);
  GgufFile f;
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "GGUF", 4) != 0)
    return r.err("no GGUF magic (the file must start with the bytes 'GGUF')", 0);
  (void)r.get<uint32_t>("magic");
  auto version = r.get<uint32_t>("version");
  if (!version) return version.error();
  if (*version != 2 && *version != 3)
    return r.err("unsupported GGUF version " + std::to_string(*version) + " (2 and 3 are read)", 4);
  f.version = *version;
  auto n_tensors = r.get<uint64_t>("tensor count");
  if (!n_tensors) return n_tensors.error();
  auto n_kv = r.get<uint64_t>("metadata count");
  if (!n_kv) return n_kv.error();
  // A key/value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8.
  if (*n_kv > r.left() / 14)
    return r.err("metadata count " + std::to_string(*n_kv) + " is impossible for a file of " +
                     std::to_string(bytes.size()) + " bytes",
                 16);
  if (*n_tensors > r.left() / 33)
    return r.err("tensor count " + std::to_string(*n_tensors) + " is impossible for a file of " +
                     std::to_string(bytes.size()) + " bytes",
                 8);

  std::set<std::string> keys;
  for (uint64_t k = 0; k < *n_kv; ++k) {
    const size_t at = r.pos();
    auto key = r.str("metadata key");
    if (!key) return key.error();
    if (key->empty()) return r.err("metadata key " + std::to_string(k) + " is empty", at);
    if (!keys.insert(*key).second) return r.err("duplicate metadata key '" + hex_name(*key) + "'", at);
    auto t = r.get<uint32_t>("value type");
    if (!t) return t.error();
    if (*t > 12)
      return r.err("key '" + hex_name(*key) + "': unknown value type " + std::to_string(*t), r.pos() - 4);
    auto v = read_value(r, static_cast<GgufType>(*t), *key, false);
    if (!v) return v.error();
    if (*key == "general.alignment") {
      if (v->type != GgufType::u32)
        return r.err("general.alignment has type " + std::string(gguf_type_name(v->type)) +
                         ", expected u32",
                     at);
      if (v->u == 0 || (v->u & (v->u - 1)) != 0 || v->u > kMaxAlignment)
        return r.err("general.alignment " + std::to_string(v->u) +
                         " is not a power of two up to " + std::to_string(kMaxAlignment),
                     at);
      f.alignment = static_cast<uint32_t>(v->u);
    }
    f.metadata.emplace_back(std::move(*key), std::move(*v));
  }

  struct Info {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t offset, nbytes;
    size_t at;
  };
  std::vector<Info> infos;
  infos.reserve(static_cast<size_t>(*n_tensors));
  std::set<std::string> names;
  for (uint64_t k = 0; k < *n_tensors; ++k) {
    Info in;
    in.at = r.pos();
    auto nm = r.str("tensor name");
    if (!nm) return nm.error();
    in.name = std::move(*nm);
    auto bad = [&](const std::string& m) {
      return r.err("tensor '" + hex_name(in.name) + "': " + m, in.at);
    };
    if (in.name.empty()) return bad("empty tensor name");
    if (in.name.size() >= kMaxNameBytes)
      return bad("name is " + std::to_string(in.name.size()) + " bytes (ggml allows at most 63)");
    if (!names.insert(in.name).second) return bad("duplicate tensor name");
    auto nd = r.get<uint32_t>("n_dims");
    if (!nd) return nd.error();
    if (*nd == 0 || *nd > kMaxDims)
      return bad("n_dims " + std::to_string(*nd) + " is outside 1.." + std::to_string(kMaxDims));
    uint64_t ne[kMaxDims] = {1, 1, 1, 1};
    for (uint32_t d = 0; d < *nd; ++d) {
      auto x = r.get<uint64_t>("ne");
      if (!x) return x.error();
      if (*x > static_cast<uint64_t>(INT64_MAX)) return bad("dimension " + std::to_string(d) + " is negative");
      ne[d] = *x;
    }
    auto ty = r.get<uint32_t>("tensor type");
    if (!ty) return ty.error();
    const TypeRow* row = ggml_row(*ty);
    if (!row) return bad("unknown ggml type " + std::to_string(*ty));
    if (!row->dtype)
      return bad("ggml type " + std::string(row->name) + " (" + std::to_string(*ty) +
                 ") is not supported (wkv reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
                 "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    in.dtype = *row->dtype;
    auto off = r.get<uint64_t>("tensor offset");
    if (!off) return off.error();
    in.offset = *off;
    const uint64_t block = dtype_info(in.dtype).block;
    if (ne[0] % block != 0)
      return bad("row length ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
                 row->name + " block (" + std::to_string(block) + ")");
    // Bytes and elements, both checked: an empty dimension must not hide absurd others
    // (their product would still overflow element counts elsewhere).
    uint64_t n = ne[0] / block, span = 1;
    bool ok = checked_mul(n, dtype_size(in.dtype), &n);
    for (uint32_t d = 0; d < kMaxDims; ++d) ok = ok && checked_mul(span, std::max<uint64_t>(ne[d], 1), &span);
    ok = ok && span <= (1ull << 62);
    for (uint32_t d = 1; d < kMaxDims; ++d)
      if (!ok || !checked_mul(n, ne[d], &n) || n > bytes.size())
        return bad("size of dims {" + std::to_string(ne[0]) + ", " + std::to_string(ne[1]) + ", " +
                   std::to_string(ne[2]) + ", " + std::to_string(ne[3]) +
                   "} exceeds the file (" + std::to_string(bytes.size()) + " bytes)");
    in.nbytes = n;
    for (uint32_t d = *nd; d-- > 0;) in.shape.push_back(static_cast<int64_t>(ne[d]));
    infos.push_back(std::move(in));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = r.pos();
  const uint64_t data_start = (header_end + f.alignment - 1) / f.alignment * f.alignment;
  if (data_start > bytes.size() && !infos.empty())
    return r.err("data section (aligned to " + std::to_string(f.alignment) +
                     ") starts past the end of the file",
                 header_end);
  const uint64_t data_size = data_start <= bytes.size() ? bytes.size() - data_start : 0;

  std::vector<size_t> order(infos.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  for (const Info& in : infos) {
    auto bad = [&](const std::string& m) {
      return r.err("tensor '" + hex_name(in.name) + "': " + m, in.at);
    };
    if (in.offset % f.alignment != 0)
      return bad("data offset " + std::to_string(in.offset) + " is not a multiple of the alignment " +
                 std::to_string(f.alignment));
    if (in.offset > data_size || in.nbytes > data_size - in.offset)
      return bad("data [" + std::to_string(in.offset) + ", +" + std::to_string(in.nbytes) +
                 ") runs past the end of the data section (" + std::to_string(data_size) +
                 " bytes at file offset " + std::to_string(data_start) + ")");
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return infos[a].offset < infos[b].offset; });
  const Info* prev = nullptr;
  for (size_t k : order) {
    const Info& in = infos[k];
    if (in.nbytes == 0) continue;
    if (prev && in.offset < prev->offset + prev->nbytes)
      return r.err("tensors '" + hex_name(prev->name) + "' and '" + hex_name(in.name) +
                       "' overlap (data offsets " + std::to_string(prev->offset) + " and " +
                       std::to_string(in.offset) + ")",
                   in.at);
    prev = &in;
  }

  for (Info& in : infos) {
    Tensor t;
    t.dtype = in.dtype;
    t.shape = std::move(in.shape);
    t.strides = contiguous_strides(t.shape);
    t.data = bytes.data() + data_start + in.offset;
    t.owner = owner;
    if (reinterpret_cast<uintptr_t>(t.data) % elem_align(t.dtype) != 0) {
      auto copy = std::make_shared<std::vector<uint64_t>>((in.nbytes + 7) / 8);
      if (in.nbytes) std::memcpy(copy->data(), t.data, static_cast<size_t>(in.nbytes));
      t.data = reinterpret_cast<const std::byte*>(copy->data());
      t.owner = copy;
    }
    f.tensors.emplace_back(std::move(in.name), std::move(t));
  }
  return f;
}

Expected<GgufFile> read_gguf(const std::string& path) {
  auto m = MappedFile::open(path);
  if (!m) return m.error();
  return parse_gguf_memory(path, (*m)->bytes(), *m);
}

namespace {

class Writer {
 public:
  explicit Writer(const ByteSink& s) : sink_(s) {}
  bool ok() const { return ok_; }
  uint64_t pos() const { return pos_; }
  void bytes(const void* p, size_t n) {
    if (ok_ && n) ok_ = sink_(p, n);
    pos_ += n;
  }
  template <class T>
  void put(T v) { bytes(&v, sizeof(T)); }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad(uint64_t align) {
    static const std::byte zeros[256] = {};
    while (pos_ % align) bytes(zeros, std::min<uint64_t>(align - pos_ % align, sizeof zeros));
  }

 private:
  const ByteSink& sink_;
  bool ok_ = true;
  uint64_t pos_ = 0;
};

Status write_value(Writer& w, const GgufValue& v, const std::string& key) {
  auto bad = [&](const std::string& m) { return Error{"gguf: key '" + key + "': " + m}; };
  switch (v.type) {
    case GgufType::u8: w.put<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case GgufType::u16: w.put<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case GgufType::u32: w.put<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case GgufType::u64: w.put<uint64_t>(v.u); break;
    case GgufType::i8: w.put<int8_t>(static_cast<int8_t>(v.i)); break;
    case GgufType::i16: w.put<int16_t>(static_cast<int16_t>(v.i)); break;
    case GgufType::i32: w.put<int32_t>(static_cast<int32_t>(v.i)); break;
    case GgufType::i64: w.put<int64_t>(v.i); break;
    case GgufType::f32: w.put<float>(static_cast<float>(v.f)); break;
    case GgufType::f64: w.put<double>(v.f); break;
    case GgufType::boolean: w.put<uint8_t>(v.u ? 1 : 0); break;
    case GgufType::string: w.str(v.str); break;
    case GgufType::array: {
      if (v.elem == GgufType::array || static_cast<uint32_t>(v.elem) > 12)
        return bad("invalid array element type");
      w.put<uint32_t>(static_cast<uint32_t>(v.elem));
      w.put<uint64_t>(v.count);
      if (v.elem == GgufType::string) {
        if (v.strs.size() != v.count) return bad("array count does not match its strings");
        for (const auto& s : v.strs) w.str(s);
      } else {
        if (v.raw.size() != v.count * scalar_size(v.elem)) return bad("array count does not match its bytes");
        w.bytes(v.raw.data(), v.raw.size());
      }
      break;
    }
    default: return bad("invalid value type");
  }
  return Status::success();
}

}  // namespace

Status write_gguf(const ByteSink& sink, const GgufFile& file) {
  const uint32_t align = file.alignment;
  if (align == 0 || (align & (align - 1)) != 0 || align > kMaxAlignment)
    return Error{"gguf: alignment " + std::to_string(align) + " is not a power of two"};
  std::vector<std::pair<std::string, GgufValue>> meta = file.metadata;
  bool has_align = false;
  std::set<std::string> keys;
  for (const auto& [k, v] : meta) {
    if (k.empty() || !keys.insert(k).second) return Error{"gguf: empty or duplicate key '" + k + "'"};
    if (k == "general.alignment") {
      if (v.type != GgufType::u32 || v.u != align)
        return Error{"gguf: general.alignment does not match the file's alignment"};
      has_align = true;
    }
  }
  if (!has_align && align != kDefaultAlignment)
    meta.emplace_back("general.alignment", GgufValue::of_u32(align));

  std::vector<uint64_t> sizes;
  std::set<std::string> names;
  for (const auto& entry : file.tensors) {
    const std::string& name = entry.first;  // (clang 14 cannot capture structured bindings)
    const Tensor& t = entry.second;
    auto bad = [&](const std::string& m) { return Error{"gguf: tensor '" + name + "': " + m}; };
    if (name.empty() || name.size() >= kMaxNameBytes) return bad("name must be 1..63 bytes");
    if (!names.insert(name).second) return bad("duplicate tensor name");
    if (t.shape.empty() || t.shape.size() > kMaxDims) return bad("rank must be 1..4");
    if (!ggml_type_of(t.dtype)) return bad("dtype " + std::string(dtype_name(t.dtype)) + " has no ggml type");
    for (int64_t d : t.shape)
      if (d < 0) return bad("negative dimension");
    if (t.shape.back() % dtype_info(t.dtype).block != 0)
      return bad("row length is not a multiple of the block");
    if (dtype_is_quantized(t.dtype) && !t.is_contiguous()) return bad("quantized tensor is not contiguous");
    if (t.numel() > 0 && !t.data) return bad("no data");
    if (!t.strides.empty() && t.strides.size() != t.shape.size()) return bad("strides do not match the shape");
    sizes.push_back(t.nbytes());
  }

  auto write_all = [&](const ByteSink& s) -> Status {
    Writer w(s);
    w.bytes("GGUF", 4);
    w.put<uint32_t>(3);
    w.put<uint64_t>(file.tensors.size());
    w.put<uint64_t>(meta.size());
    for (const auto& [k, v] : meta) {
      w.str(k);
      w.put<uint32_t>(static_cast<uint32_t>(v.type));
      WKV_TRY_STATUS(write_value(w, v, k));
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < file.tensors.size(); ++i) {
      const auto& [name, t] = file.tensors[i];
      w.str(name);
      w.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
      for (size_t d = t.shape.size(); d-- > 0;) w.put<uint64_t>(static_cast<uint64_t>(t.shape[d]));
      w.put<uint32_t>(*ggml_type_of(t.dtype));
      w.put<uint64_t>(offset);
      offset += (sizes[i] + align - 1) / align * align;
    }
    w.pad(align);
    for (size_t i = 0; i < file.tensors.size(); ++i) {
      const Tensor& t = file.tensors[i].second;
      if (sizes[i]) {
        if (t.strides.empty() || t.is_contiguous()) {
          w.bytes(t.data, sizes[i]);
        } else {
          const std::vector<std::byte> b = contiguous_bytes(t);
          w.bytes(b.data(), b.size());
        }
      }
      w.pad(align);
    }
    if (!w.ok()) return Error{"gguf: write failed"};
    return Status::success();
  };
  return write_all(sink);
}

Status save_gguf(const std::string& path, const GgufFile& file) {
  Status result;
  Status io = write_file_atomic(path, [&](const ByteSink& sink) {
    result = write_gguf(sink, file);
    return result.ok();
  });
  if (!result) return Error{path + ": " + result.error().message};
  if (!io) return io;
  return Status::success();
}

}  // namespace wkv
