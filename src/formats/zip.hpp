// Read-only, validating reader for zip archives held in memory (used for torch.save files).
//
// Zip format summary (PKWARE APPNOTE), all integers little-endian:
//   [local header 0][data 0][data descriptor 0?] ... [central directory] [zip64 EOCD?]
//   [zip64 EOCD locator?] [end of central directory (EOCD)]
// * EOCD (22 bytes + comment, signature PK\5\6): entry count, central directory size and offset.
//   When a field is saturated (0xFFFF / 0xFFFFFFFF) the real value lives in the zip64 EOCD record
//   (PK\6\6), found through the zip64 locator (PK\6\7) that sits right before the EOCD.
// * Central directory header (46 bytes + name + extra + comment, PK\1\2): flags, method, CRC-32,
//   sizes and the local header offset; saturated sizes/offset come from the zip64 extra field
//   (id 0x0001, 64-bit values in the order size, compressed size, offset).
// * Local header (30 bytes + name + extra, PK\3\4) precedes each entry's data. With flag bit 3 the
//   sizes in it are zero and a data descriptor follows the data, so the central directory is
//   authoritative for sizes. torch pads the local extra field so that data is 64-byte aligned.
// Validation: EOCD found and consistent, central directory inside the file, every local header
// inside the file and matching its central entry, data inside the file before the central
// directory, no duplicate names, no overlapping entries, no encryption, no multi-disk archives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"

namespace wkv::zip {

struct Entry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;  // 0 stored, 8 deflated (others are rejected when read)
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;  // uncompressed
  uint64_t header_offset = 0;
  uint64_t data_offset = 0;  // first byte of the (possibly compressed) data
};

// Bytes of one entry: a view into the archive for stored entries (owner is null then), or an
// inflated copy kept alive by owner.
struct EntryData {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;
};

class Archive {
 public:
  // `label` names the archive in error messages (normally the file path). `bytes` must outlive
  // the Archive and every view returned by read().
  static Expected<Archive> parse(const std::string& label, std::span<const std::byte> bytes);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(std::string_view name) const;

  // Returns the entry's bytes. Stored entries are not copied and not CRC-checked (they may be
  // gigabytes of weights) unless verify_crc is set; deflated entries are inflated into an owned
  // buffer when their declared size is at most max_size and plausible for their compressed size,
  // and always CRC-checked.
  Expected<EntryData> read(const Entry& e, uint64_t max_size, bool verify_crc) const;

 private:
  std::string label_;
  std::span<const std::byte> bytes_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace wkv::zip
