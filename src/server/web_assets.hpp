// The chat page's files (web/), embedded in the binary at build time by web/embed.cmake.
#pragma once

#include <cstddef>

namespace wkv::server {

struct WebAsset {
  const char* path;  // "/index.html"
  const char* mime;
  const unsigned char* data;
  size_t size;
};
extern const WebAsset kWebAssets[];
extern const size_t kWebAssetCount;

}  // namespace wkv::server
