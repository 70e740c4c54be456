// safetensors reading (validated, zero-copy views into the file) and writing, plus
// load_tensors(), which picks the reader (.pth, rwkv.cpp .bin, safetensors) by file content.
//
// Layout: u64 little-endian N, then N bytes of JSON {name: {"dtype", "shape", "data_offsets":
// [begin, end]}, "__metadata__": {str: str}}, then the data section; offsets are relative to it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "formats/formats.hpp"
#include "formats/gguf.hpp"

namespace wkv {

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr size_t kMaxJsonDepth = 64;
constexpr size_t kMaxDims = 64;

// Deepest nesting of [ and { outside strings (so that no recursive code sees absurd depths).
size_t json_depth(std::string_view s) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

// A JSON value as a non-negative int64, or nothing.
bool as_count(const json& v, uint64_t* out) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) return false;
  const uint64_t u = v.get<uint64_t>();
  if (u > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = u;
  return true;
}

std::string json_text(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 60) + "..." : s;
}

struct Range {
  uint64_t begin, end;
  const std::string* name;
};

// Bytes in logical order of a tensor whose strides may be left empty (meaning contiguous).
bool write_tensor_data(const ByteSink& sink, const Tensor& t, size_t nbytes) {
  if (nbytes == 0) return true;
  if (t.strides.empty() || t.is_contiguous()) return sink(t.data, nbytes);
  const std::vector<std::byte> b = contiguous_bytes(t);
  return sink(b.data(), b.size());
}

struct Header {
  std::string text;                 // padded JSON
  std::vector<size_t> tensor_bytes;  // per tensor, in map order
};

Expected<Header> build_header(const TensorMap& tensors,
                              const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = std::move(m);
  }
  Header out;
  uint64_t offset = 0;
  for (const auto& entry : tensors) {
    const std::string& name = entry.first;  // (clang 14 cannot capture structured bindings)
    const Tensor& t = entry.second;
    auto bad = [&](const std::string& m) { return Error{"safetensors: tensor '" + name + "': " + m}; };
    if (name == "__metadata__") return bad("reserved tensor name");
    if (!t.strides.empty() && t.strides.size() != t.shape.size())
      return bad("strides do not match the shape");
    uint64_t bytes = dtype_size(t.dtype);
    json shape = json::array();
    for (int64_t d : t.shape) {
      if (d < 0 || !checked_mul(bytes, static_cast<uint64_t>(d), &bytes))
        return bad("invalid shape " + t.shape_str());
      shape.push_back(d);
    }
    if (bytes > 0 && !t.data) return bad("no data");
    uint64_t end = 0;
    if (!checked_add(offset, bytes, &end)) return bad("total size overflows");
    h[name] = {{"dtype", std::string(dtype_info(t.dtype).safetensors)},
               {"shape", std::move(shape)},
               {"data_offsets", json::array({offset, end})}};
    out.tensor_bytes.push_back(static_cast<size_t>(bytes));
    offset = end;
  }
  try {
    out.text = h.dump();
  } catch (const json::exception&) {
    return Error{"safetensors: a tensor name or metadata string is not valid UTF-8"};
  }
  while ((8 + out.text.size()) % 8 != 0) out.text += ' ';
  return out;
}

Status write_with_header(const ByteSink& sink, const TensorMap& tensors, const Header& h) {
  uint8_t len[8];
  const uint64_t n = h.text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  bool ok = sink(len, 8) && sink(h.text.data(), h.text.size());
  size_t i = 0;
  for (const auto& [name, t] : tensors) {
    if (!ok) break;
    ok = write_tensor_data(sink, t, h.tensor_bytes[i++]);
  }
  if (!ok) return Error{"safetensors: write failed"};
  return Status::success();
}

}  // namespace

Expected<TensorMap> parse_safetensors_memory(const std::string& name,
                                             std::span<const std::byte> bytes,
                                             std::shared_ptr<const void> owner,
                                             std::map<std::string, std::string>* metadata) {
  auto err = [&](const std::string& m) { return Error{name + ": safetensors: " + m}; };
  if (bytes.size() < 8)
    return err("file too small (" + std::to_string(bytes.size()) + " bytes) for the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  if (n > kMaxHeaderBytes)
    return err("header length " + std::to_string(n) + " exceeds the limit of " +
               std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > bytes.size() - 8)
    return err("header length " + std::to_string(n) + " runs past the end of the file (" +
               std::to_string(bytes.size()) + " bytes)");
  const char* hb = reinterpret_cast<const char*>(bytes.data() + 8);
  const std::string_view header(hb, static_cast<size_t>(n));
  if (json_depth(header) > kMaxJsonDepth) return err("header JSON is nested too deeply");

  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && duplicate.empty() && parsed.is_string()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(header.begin(), header.end(), cb, true);
  } catch (const json::exception& e) {
    return err(std::string("invalid JSON header: ") + e.what());
  }
  if (!duplicate.empty()) return err("duplicate tensor name '" + duplicate + "'");
  if (!j.is_object()) return err("header is not a JSON object");

  const std::span<const std::byte> data = bytes.subspan(8 + static_cast<size_t>(n));
  TensorMap out;
  std::vector<Range> ranges;
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const json& v = item.value();
    if (key == "__metadata__") {
      if (!v.is_object()) return err("__metadata__ is not an object");
      for (const auto& [mk, mv] : v.items()) {
        if (!mv.is_string()) return err("metadata value '" + mk + "' is not a string");
        if (metadata) (*metadata)[mk] = mv.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& m) { return err("tensor '" + key + "': " + m); };
    if (!v.is_object()) return bad("entry is not an object");
    auto dt_it = v.find("dtype");
    auto shape_it = v.find("shape");
    auto off_it = v.find("data_offsets");
    if (dt_it == v.end() || !dt_it->is_string()) return bad("missing or non-string dtype");
    const auto dtype = dtype_from_safetensors(dt_it->get_ref<const std::string&>());
    if (!dtype) return bad("unsupported dtype " + json_text(*dt_it));
    if (shape_it == v.end() || !shape_it->is_array()) return bad("missing or non-array shape");
    if (shape_it->size() > kMaxDims) return bad("too many dimensions");
    if (off_it == v.end() || !off_it->is_array() || off_it->size() != 2)
      return bad("data_offsets is not a [begin, end] pair");

    Tensor t;
    t.dtype = *dtype;
    uint64_t numel = 1;
    bool overflow = false;
    for (const json& d : *shape_it) {
      uint64_t dim = 0;
      if (!as_count(d, &dim)) return bad("shape element " + json_text(d) + " is not a non-negative integer");
      overflow |= !checked_mul(numel, dim, &numel);
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t begin = 0, end = 0;
    if (!as_count((*off_it)[0], &begin) || !as_count((*off_it)[1], &end))
      return bad("data_offsets are not non-negative integers");
    if (begin > end || end > data.size())
      return bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] lie outside the data section (" + std::to_string(data.size()) + " bytes)");
    uint64_t nbytes = 0;
    if (overflow || !checked_mul(numel, dtype_size(t.dtype), &nbytes) || nbytes != end - begin)
      return bad("shape " + t.shape_str() + " of " + std::string(dtype_name(t.dtype)) +
                 " does not match its " + std::to_string(end - begin) + " data bytes");
    t.strides = contiguous_strides(t.shape);
    t.data = data.data() + begin;
    t.owner = owner;
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0) {
      auto copy = std::make_shared<std::vector<std::byte>>(t.data, t.data + nbytes);
      t.data = copy->data();
      t.owner = copy;
    }
    auto [it, inserted] = out.emplace(key, std::move(t));
    ranges.push_back({begin, end, &it->first});
  }

  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  const Range* prev = nullptr;
  for (const Range& r : ranges) {
    if (r.begin == r.end) continue;  // empty tensors occupy no bytes
    if (prev && r.begin < prev->end)
      return err("tensors '" + *prev->name + "' and '" + *r.name + "' overlap");
    prev = &r;
  }
  return out;
}

Expected<TensorMap> load_safetensors(const std::string& path,
                                     std::map<std::string, std::string>* metadata) {
  auto f = MappedFile::open(path);
  if (!f) return f.error();
  return parse_safetensors_memory(path, (*f)->bytes(), *f, metadata);
}

Expected<TensorMap> load_safetensors(const std::string& path) { return load_safetensors(path, nullptr); }

Status write_safetensors(const ByteSink& sink, const TensorMap& tensors,
                         const std::map<std::string, std::string>& metadata) {
  auto h = build_header(tensors, metadata);
  if (!h) return h.error();
  return write_with_header(sink, tensors, *h);
}

Status save_safetensors(const std::string& path, const TensorMap& tensors,
                        const std::map<std::string, std::string>& metadata) {
  auto h = build_header(tensors, metadata);
  if (!h) return Error{path + ": " + h.error().message};
  return write_file_atomic(path, [&](const ByteSink& sink) {
    return write_with_header(sink, tensors, *h).ok();
  });
}

Expected<TensorMap> load_tensors(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f) return f.error();
  const auto b = (*f)->bytes();
  if (b.size() >= 4 && std::memcmp(b.data(), "PK\x03\x04", 4) == 0) {
    auto r = load_pth_from_memory(path, b, *f);
    if (!r) return Error{r.error().message + " (read as a PyTorch zip checkpoint because it starts with PK\\x03\\x04)"};
    return r;
  }
  if (b.size() >= 4 && std::memcmp(b.data(), "fmgg", 4) == 0) return load_rwkvcpp_from_memory(path, b, *f);
  if (b.size() >= 4 && std::memcmp(b.data(), "GGUF", 4) == 0) return load_gguf_from_memory(path, b, *f);
  auto r = parse_safetensors_memory(path, b, *f, nullptr);
  if (!r) {
    std::string why = r.error().message;
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);
    return Error{path + ": not a readable tensor file (tried: PyTorch zip checkpoint - no "
                 "PK\\x03\\x04 magic; rwkv.cpp model file - no 0x67676d66 magic; " + why + ")"};
  }
  return r;
}

}  // namespace wkv
