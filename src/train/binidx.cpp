// binidx writer and reader (see binidx.hpp).
#include "train/binidx.hpp"

#include <cstring>

#include "core/file.hpp"

namespace wkv::train {

namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
constexpr uint8_t kCodeI32 = 4, kCodeU16 = 8;

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  uint8_t x[sizeof(T)];
  std::memcpy(x, &v, sizeof(T));  // little-endian hosts only (as the rest of wkv)
  b.insert(b.end(), x, x + sizeof(T));
}

template <class T>
bool get(const std::byte* p, size_t n, size_t& off, T& v) {
  if (off > n || n - off < sizeof(T)) return false;
  std::memcpy(&v, p + off, sizeof(T));
  off += sizeof(T);
  return true;
}

std::string strip(const std::string& p) {
  for (const char* ext : {".bin", ".idx"})
    if (p.size() > 4 && p.compare(p.size() - 4, 4, ext) == 0) return p.substr(0, p.size() - 4);
  return p;
}

}  // namespace

Status write_binidx(const std::string& prefix_in, const std::vector<std::vector<int32_t>>& docs) {
  const std::string prefix = strip(prefix_in);
  bool u16 = true;
  for (const auto& d : docs)
    for (int32_t id : d) {
      if (id < 0) return Error{prefix + ".bin: negative token id " + std::to_string(id)};
      u16 = u16 && id <= 0xffff;
    }
  std::vector<uint8_t> bin, idx;
  std::vector<int32_t> sizes;
  std::vector<int64_t> pointers;
  for (const auto& d : docs) {
    pointers.push_back(int64_t(bin.size()));
    sizes.push_back(int32_t(d.size() + 1));
    for (int32_t id : d) u16 ? put(bin, uint16_t(id)) : put(bin, id);
    u16 ? put(bin, uint16_t(0)) : put(bin, int32_t(0));
  }
  idx.insert(idx.end(), kMagic, kMagic + 9);
  put(idx, uint64_t(1));
  idx.push_back(u16 ? kCodeU16 : kCodeI32);
  put(idx, uint64_t(docs.size()));
  put(idx, uint64_t(docs.size() + 1));
  for (int32_t s : sizes) put(idx, s);
  for (int64_t p : pointers) put(idx, p);
  for (size_t i = 0; i <= docs.size(); ++i) put(idx, int64_t(i));
  auto write = [](const std::string& path, const std::vector<uint8_t>& b) {
    return write_file_atomic(
        path, [&](const ByteSink& sink) { return b.empty() || sink(b.data(), b.size()); });
  };
  WKV_TRY_STATUS(write(prefix + ".bin", bin));
  return write(prefix + ".idx", idx);
}

uint64_t magic_prime(uint64_t tokens, uint64_t ctx_len) {
  if (ctx_len == 0) return 0;
  const uint64_t slots = tokens / ctx_len;
  auto is_prime = [](uint64_t x) {
    if (x < 2) return false;
    for (uint64_t d = 2; d * d <= x; ++d)
      if (x % d == 0) return false;
    return true;
  };
  for (uint64_t p = slots >= 1 ? slots - 1 : 0; p >= 2; --p) {
    if (double(p) / double(slots) <= 0.9) break;
    if (p % 3 == 2 && is_prime(p)) return p;
  }
  return 0;
}

Expected<std::vector<int32_t>> read_binidx(const std::string& prefix_in) {
  const std::string prefix = strip(prefix_in);
  const std::string ip = prefix + ".idx", bp = prefix + ".bin";
  auto idx = MappedFile::open(ip);
  if (!idx) return idx.error();
  auto bin = MappedFile::open(bp);
  if (!bin) return bin.error();
  const std::byte* p = (*idx)->bytes().data();
  const size_t n = (*idx)->bytes().size();
  size_t off = 0;
  if (n < 9 || std::memcmp(p, kMagic, 9) != 0)
    return Error{ip + ": not a binidx index (bad magic)"};
  off = 9;
  uint64_t version = 0, len = 0, docs = 0;
  uint8_t code = 0;
  if (!get(p, n, off, version) || !get(p, n, off, code) || !get(p, n, off, len) ||
      !get(p, n, off, docs))
    return Error{ip + ": truncated header"};
  if (version != 1) return Error{ip + ": version " + std::to_string(version) + ", expected 1"};
  size_t item;
  switch (code) {
    case 1:
      item = 1;
      break;  // u8
    case kCodeU16:
      item = 2;
      break;  // u16
    case kCodeI32:
      item = 4;
      break;  // i32
    default:
      return Error{ip + ": token dtype code " + std::to_string(code) + " is not u8, u16 or i32"};
  }
  // sizes (4 bytes) + pointers (8) per item, then doc_idx (8 each)
  if (len > n / 12 || docs > n / 8 || off + len * 12 + docs * 8 != n)
    return Error{ip + ": " + std::to_string(len) + " items and " + std::to_string(docs) +
                 " documents do not match the file size " + std::to_string(n)};
  const std::byte* b = (*bin)->bytes().data();
  const size_t bn = (*bin)->bytes().size();
  std::vector<int32_t> out;
  const size_t sizes_off = off, ptr_off = off + len * 4;
  for (uint64_t i = 0; i < len; ++i) {
    int32_t size = 0;
    int64_t ptr = 0;
    size_t so = sizes_off + i * 4, po = ptr_off + i * 8;
    get(p, n, so, size);
    get(p, n, po, ptr);
    if (size < 0 || ptr < 0 || uint64_t(ptr) > bn || (bn - uint64_t(ptr)) / item < uint64_t(size))
      return Error{ip + ": item " + std::to_string(i) + " (offset " + std::to_string(ptr) + ", " +
                   std::to_string(size) + " tokens) lies outside " + bp};
    for (int32_t t = 0; t < size; ++t) {
      const std::byte* q = b + ptr + int64_t(t) * int64_t(item);
      int32_t v;
      if (item == 1) {
        v = int32_t(uint8_t(q[0]));
      } else if (item == 2) {
        uint16_t x;
        std::memcpy(&x, q, 2);
        v = x;
      } else {
        std::memcpy(&v, q, 4);
        if (v < 0) return Error{bp + ": negative token id in item " + std::to_string(i)};
      }
      out.push_back(v);
    }
  }
  return out;
}

}  // namespace wkv::train
