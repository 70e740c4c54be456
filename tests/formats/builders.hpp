// Test helpers that build torch.save-style files in memory: a small zip writer (stored or
// deflated entries, optional data descriptors and zip64 records) and a pickle writer for state
// dicts, so that tests can craft valid and hostile checkpoints byte by byte.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace wkv::test {

inline void put16(std::string& s, uint16_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>(v >> 8);
}
inline void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v & 0xffff));
  put16(s, static_cast<uint16_t>(v >> 16));
}
inline void put64(std::string& s, uint64_t v) {
  put32(s, static_cast<uint32_t>(v));
  put32(s, static_cast<uint32_t>(v >> 32));
}
inline void patch32(std::string& s, size_t at, uint32_t v) {
  std::string b;
  put32(b, v);
  s.replace(at, 4, b);
}
inline std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string raw_deflate(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct ZipItem {
  std::string name;
  std::string data;
  bool deflate = false;
};
struct ZipOptions {
  bool zip64 = false;       // zip64 extra fields and end records (saturated 32-bit fields)
  bool descriptor = false;  // flag bit 3: zero sizes in local headers, data descriptor after data
  size_t align = 64;        // data alignment (torch pads the local extra field to 64 bytes)
};
struct BuiltZip {
  std::string bytes;
  std::vector<size_t> local_offsets;
  std::vector<size_t> central_offsets;
  size_t cd_offset = 0;
  size_t eocd_offset = 0;
};

inline BuiltZip build_zip(const std::vector<ZipItem>& items, ZipOptions opt = {}) {
  BuiltZip z;
  std::string& s = z.bytes;
  struct Info {
    uint32_t crc;
    uint64_t csize, size, offset;
    uint16_t method;
  };
  std::vector<Info> infos;
  const uint16_t flags = opt.descriptor ? 0x0808 : 0x0800;
  for (const ZipItem& it : items) {
    const std::string payload = it.deflate ? raw_deflate(it.data) : it.data;
    Info inf{static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(it.data.data()),
                                         static_cast<uInt>(it.data.size()))),
             payload.size(), it.data.size(), s.size(), static_cast<uint16_t>(it.deflate ? 8 : 0)};
    z.local_offsets.push_back(s.size());
    std::string extra;
    if (opt.zip64) {
      put16(extra, 1);
      put16(extra, 16);
      put64(extra, inf.size);
      put64(extra, inf.csize);
    }
    if (opt.align > 1) {
      const size_t base = s.size() + 30 + it.name.size() + extra.size() + 4;
      const size_t pad = (opt.align - base % opt.align) % opt.align;
      put16(extra, 0x4246);
      put16(extra, static_cast<uint16_t>(pad));
      extra.append(pad, 'Z');
    }
    put32(s, 0x04034b50);
    put16(s, opt.zip64 ? 45 : 20);
    put16(s, flags);
    put16(s, inf.method);
    put16(s, 0);
    put16(s, 0x21);
    put32(s, opt.descriptor ? 0 : inf.crc);
    const uint32_t lsize = opt.zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(inf.size);
    const uint32_t lcsize = opt.zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(inf.csize);
    put32(s, opt.descriptor ? 0 : lcsize);
    put32(s, opt.descriptor ? 0 : lsize);
    put16(s, static_cast<uint16_t>(it.name.size()));
    put16(s, static_cast<uint16_t>(extra.size()));
    s += it.name;
    s += extra;
    s += payload;
    if (opt.descriptor) {
      put32(s, 0x08074b50);
      put32(s, inf.crc);
      if (opt.zip64) {
        put64(s, inf.csize);
        put64(s, inf.size);
      } else {
        put32(s, static_cast<uint32_t>(inf.csize));
        put32(s, static_cast<uint32_t>(inf.size));
      }
    }
    infos.push_back(inf);
  }
  z.cd_offset = s.size();
  for (size_t i = 0; i < items.size(); ++i) {
    const Info& inf = infos[i];
    z.central_offsets.push_back(s.size());
    std::string extra;
    if (opt.zip64) {
      put16(extra, 1);
      put16(extra, 24);
      put64(extra, inf.size);
      put64(extra, inf.csize);
      put64(extra, inf.offset);
    }
    put32(s, 0x02014b50);
    put16(s, opt.zip64 ? 45 : 20);
    put16(s, opt.zip64 ? 45 : 20);
    put16(s, flags);
    put16(s, inf.method);
    put16(s, 0);
    put16(s, 0x21);
    put32(s, inf.crc);
    put32(s, opt.zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(inf.csize));
    put32(s, opt.zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(inf.size));
    put16(s, static_cast<uint16_t>(items[i].name.size()));
    put16(s, static_cast<uint16_t>(extra.size()));
    put16(s, 0);  // comment
    put16(s, 0);  // disk
    put16(s, 0);  // internal attributes
    put32(s, 0);  // external attributes
    put32(s, opt.zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(inf.offset));
    s += items[i].name;
    s += extra;
  }
  const size_t cd_size = s.size() - z.cd_offset;
  if (opt.zip64) {
    const size_t rec = s.size();
    put32(s, 0x06064b50);
    put64(s, 44);
    put16(s, 45);
    put16(s, 45);
    put32(s, 0);
    put32(s, 0);
    put64(s, items.size());
    put64(s, items.size());
    put64(s, cd_size);
    put64(s, z.cd_offset);
    put32(s, 0x07064b50);
    put32(s, 0);
    put64(s, rec);
    put32(s, 1);
  }
  z.eocd_offset = s.size();
  put32(s, 0x06054b50);
  put16(s, 0);
  put16(s, 0);
  put16(s, opt.zip64 ? 0xFFFF : static_cast<uint16_t>(items.size()));
  put16(s, opt.zip64 ? 0xFFFF : static_cast<uint16_t>(items.size()));
  put32(s, opt.zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(cd_size));
  put32(s, opt.zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(z.cd_offset));
  put16(s, 0);
  return z;
}

// Emits pickle opcodes.
struct PickleWriter {
  std::string out;
  PickleWriter& op(uint8_t c) {
    out += static_cast<char>(c);
    return *this;
  }
  PickleWriter& proto(int v) { return op(0x80).op(static_cast<uint8_t>(v)); }
  PickleWriter& global(const std::string& module, const std::string& name) {
    out += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  PickleWriter& str(const std::string& s) {
    op('X');
    put32(out, static_cast<uint32_t>(s.size()));
    out += s;
    return *this;
  }
  PickleWriter& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').op(static_cast<uint8_t>(v));
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      put32(out, static_cast<uint32_t>(v));
      return *this;
    }
    op(0x8a).op(8);
    put64(out, static_cast<uint64_t>(v));
    return *this;
  }
  PickleWriter& ints(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  PickleWriter& mark() { return op('('); }
  PickleWriter& tuple() { return op('t'); }
  PickleWriter& reduce() { return op('R'); }
  PickleWriter& ordered_dict() { return global("collections", "OrderedDict").op(')').reduce(); }
  PickleWriter& stop() { return op('.'); }
};

struct TensorSpec {
  std::string name{};
  std::string storage_type = "FloatStorage";
  std::string key{};
  int64_t storage_numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> shape{}, stride{};
  bool parameter = false;
};

// The tensor as torch pickles it: _rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict()).
inline void write_tensor(PickleWriter& w, const TensorSpec& t) {
  if (t.parameter) w.global("torch._utils", "_rebuild_parameter").mark();
  w.global("torch._utils", "_rebuild_tensor_v2").mark();
  w.mark().str("storage").global("torch", t.storage_type).str(t.key).str("cpu").integer(t.storage_numel).tuple();
  w.op('Q').integer(t.offset).ints(t.shape).ints(t.stride).op(0x89).ordered_dict().tuple().reduce();
  if (t.parameter) w.op(0x89).ordered_dict().tuple().reduce();
}

inline std::string state_dict_pickle(const std::vector<TensorSpec>& specs, bool ordered = true) {
  PickleWriter w;
  w.proto(2);
  if (ordered) w.ordered_dict();
  else w.op('}');
  w.op('q').op(0).mark();
  for (const TensorSpec& t : specs) {
    w.str(t.name);
    write_tensor(w, t);
  }
  return w.op('u').stop().out;
}

inline std::string pth_bytes(const std::string& pickle, const std::map<std::string, std::string>& storages,
                             const std::string& top = "archive", ZipOptions opt = {},
                             bool deflate_storages = false) {
  std::vector<ZipItem> items{{top + "/data.pkl", pickle}};
  for (const auto& [k, v] : storages) items.push_back({top + "/data/" + k, v, deflate_storages});
  items.push_back({top + "/version", "3\n"});
  return build_zip(items, opt).bytes;
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace wkv::test
