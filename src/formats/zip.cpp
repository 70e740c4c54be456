// Zip archive parsing and validation, and reading (view or inflate) of single entries.
#include "formats/zip.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "core/tensor.hpp"

namespace wkv::zip {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EocdMinSize = 56;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kLocalSize = 30;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagDescriptor = 0x0008;
constexpr uint16_t kFlagStrongEncryption = 0x0040;
// Deflate cannot expand data by more than about 1032:1.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t rd16(const std::byte* p) {
  return static_cast<uint16_t>(static_cast<unsigned>(p[0]) | (static_cast<unsigned>(p[1]) << 8));
}
uint32_t rd32(const std::byte* p) {
  return static_cast<uint32_t>(rd16(p)) | (static_cast<uint32_t>(rd16(p + 2)) << 16);
}
uint64_t rd64(const std::byte* p) {
  return static_cast<uint64_t>(rd32(p)) | (static_cast<uint64_t>(rd32(p + 4)) << 32);
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Reads the zip64 extended-information extra field: the 64-bit values present are exactly
// those whose 32-bit (16-bit for the disk) central fields are saturated, in this order.
bool parse_zip64_extra(const std::byte* p, uint64_t len, uint64_t* size, uint64_t* csize,
                       uint64_t* offset, uint32_t* disk, std::string* why) {
  while (len >= 4) {
    const uint16_t id = rd16(p);
    const uint16_t sz = rd16(p + 2);
    p += 4;
    len -= 4;
    if (sz > len) {
      *why = "extra field runs past its declared length";
      return false;
    }
    if (id == 0x0001) {
      const std::byte* q = p;
      uint64_t left = sz;
      auto take64 = [&](uint64_t* v) {
        if (left < 8) return false;
        *v = rd64(q);
        q += 8;
        left -= 8;
        return true;
      };
      if ((*size == 0xFFFFFFFFu && !take64(size)) || (*csize == 0xFFFFFFFFu && !take64(csize)) ||
          (*offset == 0xFFFFFFFFu && !take64(offset))) {
        *why = "zip64 extra field too short";
        return false;
      }
      if (*disk == 0xFFFFu) {
        if (left < 4) {
          *why = "zip64 extra field too short";
          return false;
        }
        *disk = rd32(q);
      }
    }
    p += sz;
    len -= sz;
  }
  return true;
}

}  // namespace

Expected<Archive> Archive::parse(const std::string& label, std::span<const std::byte> bytes) {
  auto err = [&](const std::string& m) { return Error{label + ": zip: " + m}; };
  const std::byte* p = bytes.data();
  const uint64_t n = bytes.size();
  if (n < kEocdSize)
    return err("file too small to be a zip archive (" + std::to_string(n) + " bytes)");

  // End of central directory: the last PK\5\6 whose comment reaches exactly the end of file.
  uint64_t eocd = UINT64_MAX;
  const uint64_t last = n - kEocdSize;
  const uint64_t lowest = last > 0xFFFF ? last - 0xFFFF : 0;
  for (uint64_t pos = last + 1; pos-- > lowest;) {
    if (rd32(p + pos) == kEocdSig && pos + kEocdSize + rd16(p + pos + 20) == n) {
      eocd = pos;
      break;
    }
  }
  if (eocd == UINT64_MAX)
    return err("end of central directory record not found (truncated file or not a zip archive)");

  uint64_t disk = rd16(p + eocd + 4), cd_disk = rd16(p + eocd + 6);
  uint64_t count_disk = rd16(p + eocd + 8), count = rd16(p + eocd + 10);
  uint64_t cd_size = rd32(p + eocd + 12), cd_offset = rd32(p + eocd + 16);
  const bool saturated = disk == 0xFFFF || cd_disk == 0xFFFF || count_disk == 0xFFFF ||
                         count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu;
  uint64_t cd_limit = eocd;  // the central directory must end at or before this offset
  if (eocd >= kZip64LocatorSize && rd32(p + eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint64_t loc = eocd - kZip64LocatorSize;
    const uint32_t loc_disk = rd32(p + loc + 4);
    const uint64_t rec = rd64(p + loc + 8);
    const uint32_t disks = rd32(p + loc + 16);
    if (loc_disk != 0 || disks > 1) return err("multi-disk archives are not supported");
    if (rec > loc || loc - rec < kZip64EocdMinSize)
      return err("zip64 end of central directory record lies outside the file");
    if (rd32(p + rec) != kZip64EocdSig)
      return err("zip64 end of central directory record has a bad signature");
    const uint64_t rec_size = rd64(p + rec + 4);  // size of the rest of the record
    if (rec_size < kZip64EocdMinSize - 12 || rec_size > loc - rec - 12)
      return err("zip64 end of central directory record has an invalid size");
    disk = rd32(p + rec + 16);
    cd_disk = rd32(p + rec + 20);
    count_disk = rd64(p + rec + 24);
    count = rd64(p + rec + 32);
    cd_size = rd64(p + rec + 40);
    cd_offset = rd64(p + rec + 48);
    cd_limit = rec;
  } else if (saturated) {
    return err("end of central directory needs zip64 values but no zip64 locator was found");
  }
  if (disk != 0 || cd_disk != 0 || count_disk != count)
    return err("multi-disk archives are not supported");
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
    return err("central directory (offset " + std::to_string(cd_offset) + ", size " +
               std::to_string(cd_size) + ") lies outside the file");
  if (count > cd_size / kCentralSize)
    return err("entry count " + std::to_string(count) +
               " does not fit in the central directory size " + std::to_string(cd_size));

  Archive ar;
  ar.label_ = label;
  ar.bytes_ = bytes;
  ar.entries_.reserve(static_cast<size_t>(count));
  const uint64_t cd_end = cd_offset + cd_size;
  uint64_t pos = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    const std::string at = "central directory entry " + std::to_string(i);
    if (cd_end - pos < kCentralSize) return err(at + " is truncated");
    const std::byte* c = p + pos;
    if (rd32(c) != kCentralSig) return err(at + " has a bad signature");
    Entry e;
    e.flags = rd16(c + 8);
    e.method = rd16(c + 10);
    e.crc32 = rd32(c + 16);
    e.compressed_size = rd32(c + 20);
    e.size = rd32(c + 24);
    const uint64_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    uint32_t disk_start = rd16(c + 34);
    e.header_offset = rd32(c + 42);
    if (cd_end - pos - kCentralSize < name_len + extra_len + comment_len)
      return err(at + " runs past the end of the central directory");
    e.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    std::string why;
    if (!parse_zip64_extra(c + kCentralSize + name_len, extra_len, &e.size, &e.compressed_size,
                           &e.header_offset, &disk_start, &why))
      return err("entry " + quoted(e.name) + ": " + why);
    if (disk_start != 0) return err("entry " + quoted(e.name) + ": multi-disk archives are not supported");
    if (e.flags & (kFlagEncrypted | kFlagStrongEncryption))
      return err("entry " + quoted(e.name) + " is encrypted");
    if (e.name.empty()) return err(at + " has an empty name");
    if (ar.by_name_.count(e.name)) return err("duplicate entry name " + quoted(e.name));
    ar.by_name_.emplace(e.name, ar.entries_.size());
    ar.entries_.push_back(std::move(e));
    pos += kCentralSize + name_len + extra_len + comment_len;
  }

  // Local headers: inside the file, before the central directory, consistent with the
  // central directory; data inside the file before the central directory.
  for (Entry& e : ar.entries_) {
    const std::string what = "entry " + quoted(e.name);
    if (e.header_offset > cd_offset || cd_offset - e.header_offset < kLocalSize)
      return err(what + ": local header offset " + std::to_string(e.header_offset) +
                 " lies outside the file data");
    const std::byte* l = p + e.header_offset;
    if (rd32(l) != kLocalSig) return err(what + ": local header has a bad signature");
    const uint16_t lflags = rd16(l + 6);
    const uint16_t lmethod = rd16(l + 8);
    const uint32_t lcrc = rd32(l + 14);
    const uint32_t lcsize = rd32(l + 18);
    const uint32_t lsize = rd32(l + 22);
    const uint64_t lname_len = rd16(l + 26), lextra_len = rd16(l + 28);
    if (cd_offset - e.header_offset - kLocalSize < lname_len + lextra_len)
      return err(what + ": local header runs past the file data");
    if (lname_len != e.name.size() ||
        std::memcmp(l + kLocalSize, e.name.data(), e.name.size()) != 0)
      return err(what + ": local header name differs from the central directory");
    if (lmethod != e.method)
      return err(what + ": local header compression method differs from the central directory");
    if (!(lflags & kFlagDescriptor)) {
      if ((lcsize != 0xFFFFFFFFu && lcsize != e.compressed_size) ||
          (lsize != 0xFFFFFFFFu && lsize != e.size) || lcrc != e.crc32)
        return err(what + ": local header sizes or CRC differ from the central directory");
    }
    e.data_offset = e.header_offset + kLocalSize + lname_len + lextra_len;
    if (e.compressed_size > cd_offset - e.data_offset)
      return err(what + ": data (offset " + std::to_string(e.data_offset) + ", size " +
                 std::to_string(e.compressed_size) + ") runs past the end of the file data");
    if (e.method == 0 && e.compressed_size != e.size)
      return err(what + ": stored entry has different compressed and uncompressed sizes");
  }

  // No two entries may share bytes.
  std::vector<const Entry*> order;
  order.reserve(ar.entries_.size());
  for (const Entry& e : ar.entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const Entry* a, const Entry* b) { return a->header_offset < b->header_offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const Entry* a = order[i - 1];
    const Entry* b = order[i];
    if (a->data_offset + a->compressed_size > b->header_offset)
      return err("entries " + quoted(a->name) + " and " + quoted(b->name) + " overlap");
  }
  return ar;
}

const Entry* Archive::find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

Expected<EntryData> Archive::read(const Entry& e, uint64_t max_size, bool verify_crc) const {
  auto err = [&](const std::string& m) {
    return Error{label_ + ": zip: entry '" + e.name + "': " + m};
  };
  auto crc_of = [](std::span<const std::byte> b) {
    return static_cast<uint32_t>(
        crc32_z(0, reinterpret_cast<const Bytef*>(b.data()), static_cast<z_size_t>(b.size())));
  };
  const std::span<const std::byte> raw =
      bytes_.subspan(static_cast<size_t>(e.data_offset), static_cast<size_t>(e.compressed_size));
  if (e.method == 0) {
    if (e.size > max_size)
      return err("size " + std::to_string(e.size) + " exceeds the limit of " +
                 std::to_string(max_size) + " bytes");
    if (verify_crc && crc_of(raw) != e.crc32) return err("CRC-32 mismatch (corrupt data)");
    return EntryData{raw, nullptr};
  }
  if (e.method != 8)
    return err("unsupported compression method " + std::to_string(e.method) +
               " (only stored and deflated entries are supported)");
  if (e.size > max_size)
    return err("declared uncompressed size " + std::to_string(e.size) +
               " exceeds the limit of " + std::to_string(max_size) + " bytes");
  uint64_t plausible = 0;
  if (!checked_mul(e.compressed_size, kMaxDeflateRatio, &plausible) ||
      !checked_add(plausible, 64, &plausible) || e.size > plausible)
    return err("declared uncompressed size " + std::to_string(e.size) +
               " is impossible for " + std::to_string(e.compressed_size) + " compressed bytes");

  auto buf = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(e.size));
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return err("cannot initialise zlib");
  struct Guard {
    z_stream* z;
    ~Guard() { inflateEnd(z); }
  } guard{&zs};
  constexpr uint64_t kChunk = 1u << 30;  // zlib counts in 32-bit units
  const std::byte* in = raw.data();
  uint64_t in_left = raw.size();
  std::byte* out = buf->data();
  uint64_t out_left = buf->size();
  Bytef dummy = 0;
  zs.next_out = &dummy;  // zlib rejects a null output pointer even with no room
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      const uint64_t k = std::min(in_left, kChunk);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in));
      zs.avail_in = static_cast<uInt>(k);
      in += k;
      in_left -= k;
    }
    if (zs.avail_out == 0 && out_left > 0) {
      const uint64_t k = std::min(out_left, kChunk);
      zs.next_out = reinterpret_cast<Bytef*>(out);
      zs.avail_out = static_cast<uInt>(k);
      out += k;
      out_left -= k;
    }
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out == 0 && out_left == 0)
      return err("inflated data is larger than the declared size");
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0)
      return err("compressed data is truncated");
    return err("corrupt deflate data");
  }
  if (zs.avail_out != 0 || out_left != 0)
    return err("inflated data is smaller than the declared size");
  if (crc_of(*buf) != e.crc32) return err("CRC-32 mismatch (corrupt data)");
  return EntryData{std::span<const std::byte>(buf->data(), buf->size()), buf};
}

}  // namespace wkv::zip
