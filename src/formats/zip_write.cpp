// Stored zip archive writer (see zip_write.hpp).
#include "formats/zip_write.hpp"

#include <zlib.h>

#include <limits>

namespace wkv::zip {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;    // PK\3\4
constexpr uint32_t kCentralSig = 0x02014b50;  // PK\1\2
constexpr uint32_t kEndSig = 0x06054b50;      // PK\5\6
constexpr uint16_t kPadId = 0x4246;           // "FB": torch's alignment padding field
constexpr uint64_t kAlign = 64;
constexpr uint16_t kVersion = 20;  // 2.0: stored entries, no zip64

void le16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(uint8_t(v));
  b.push_back(uint8_t(v >> 8));
}
void le32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

}  // namespace

Status Writer::put(const void* p, size_t n) {
  if (n && !sink_(p, n)) return Error{"write failed"};
  offset_ += n;
  return Status::success();
}

Status Writer::add(const std::string& name, std::span<const std::byte> data) {
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  if (name.empty() || name.size() > 0xffff) return Error{"zip entry name of bad length"};
  if (data.size() >= kMax || offset_ + data.size() + name.size() + 30 + kAlign >= kMax)
    return Error{"zip archive would exceed 4 GiB (zip64 is not written): entry '" + name + "'"};
  const uLong crc =
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), uInt(data.size()));
  // Extra field: 4-byte header + padding so that the data starts 64-byte aligned.
  const uint64_t after = offset_ + 30 + name.size() + 4;
  const uint16_t pad = uint16_t((kAlign - after % kAlign) % kAlign);
  std::vector<uint8_t> h;
  le32(h, kLocalSig);
  le16(h, kVersion);
  le16(h, 0);  // flags
  le16(h, 0);  // method: stored
  le16(h, 0);  // time
  le16(h, 0);  // date
  le32(h, uint32_t(crc));
  le32(h, uint32_t(data.size()));
  le32(h, uint32_t(data.size()));
  le16(h, uint16_t(name.size()));
  le16(h, uint16_t(4 + pad));
  h.insert(h.end(), name.begin(), name.end());
  le16(h, kPadId);
  le16(h, pad);
  h.insert(h.end(), pad, uint8_t('Z'));
  entries_.push_back({name, uint32_t(crc), uint32_t(data.size()), uint32_t(offset_)});
  WKV_TRY_STATUS(put(h.data(), h.size()));
  return put(data.data(), data.size());
}

Status Writer::finish() {
  const uint64_t cd_start = offset_;
  std::vector<uint8_t> h;
  for (const Central& e : entries_) {
    le32(h, kCentralSig);
    le16(h, kVersion);  // made by
    le16(h, kVersion);  // needed
    le16(h, 0);         // flags
    le16(h, 0);         // method
    le16(h, 0);         // time
    le16(h, 0);         // date
    le32(h, e.crc);
    le32(h, e.size);
    le32(h, e.size);
    le16(h, uint16_t(e.name.size()));
    le16(h, 0);  // extra
    le16(h, 0);  // comment
    le16(h, 0);  // disk
    le16(h, 0);  // internal attributes
    le32(h, 0);  // external attributes
    le32(h, e.offset);
    h.insert(h.end(), e.name.begin(), e.name.end());
  }
  if (entries_.size() > 0xffff || cd_start + h.size() + 22 >= std::numeric_limits<uint32_t>::max())
    return Error{"zip archive too large for a non-zip64 end record"};
  const uint32_t cd_size = uint32_t(h.size());
  le32(h, kEndSig);
  le16(h, 0);  // this disk
  le16(h, 0);  // disk with the central directory
  le16(h, uint16_t(entries_.size()));
  le16(h, uint16_t(entries_.size()));
  le32(h, cd_size);
  le32(h, uint32_t(cd_start));
  le16(h, 0);  // comment length
  return put(h.data(), h.size());
}

}  // namespace wkv::zip
