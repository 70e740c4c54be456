// Files: read-only memory maps (weights are used in place) and atomic writes
// (temp file in the same folder, fsync, rename) so a user's file is never half-written.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/error.hpp"

namespace wkv {

class MappedFile {
 public:
  static Expected<std::shared_ptr<const MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Writes `path` atomically: `write` fills a temp file through the given sink; on success the
// file is fsynced and renamed over `path`. A failure leaves any existing `path` untouched.
using ByteSink = std::function<bool(const void* data, size_t n)>;
Status write_file_atomic(const std::string& path, const std::function<bool(const ByteSink&)>& write);

Expected<std::string> read_text_file(const std::string& path, size_t max_bytes);

}  // namespace wkv
