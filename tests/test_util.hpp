// Shared helpers for tests: where ../shared lives, and float comparisons that report
// max |diff| (never a signed sum where errors cancel).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

namespace wkv::test {

inline std::string shared_dir() {
  if (const char* e = std::getenv("WKV_SHARED")) return e;
  return WKV_SHARED_DEFAULT;
}
inline std::string testdata(const std::string& rel) { return shared_dir() + "/testdata/" + rel; }

inline std::string temp_dir() {
  auto p = std::filesystem::temp_directory_path() / ("wkv_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(p);
  return p.string();
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    float d = std::fabs(a[i] - b[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

}  // namespace wkv::test
