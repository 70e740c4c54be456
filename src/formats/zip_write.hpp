// Writer of stored (uncompressed) zip archives in the layout torch.save produces: local header,
// data, ... then the central directory and the end record. Each entry's data starts 64-byte
// aligned: the local header's extra field (id 0x4246 "FB", as torch writes it) pads the gap.
// All integers little-endian; CRC-32 from zlib; no zip64, so the archive must stay under 4 GiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/file.hpp"

namespace wkv::zip {

class Writer {
 public:
  explicit Writer(ByteSink sink) : sink_(std::move(sink)) {}
  // Appends one entry (stored).
  Status add(const std::string& name, std::span<const std::byte> data);
  // Writes the central directory and the end record; no entry may follow.
  Status finish();

 private:
  struct Central {
    std::string name;
    uint32_t crc, size, offset;
  };
  Status put(const void* p, size_t n);
  ByteSink sink_;
  uint64_t offset_ = 0;
  std::vector<Central> entries_;
};

}  // namespace wkv::zip
