// Test helper that writes rwkv.cpp model files (.bin) in memory: the 24-byte header and tensor
// records with raw data bytes, so that tests and fuzz seeds can craft valid and hostile files.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace wkv::test {

struct BinRecord {
  std::string key;
  int32_t type = 0;            // 0 FP32, 1 FP16, 2 Q4_0, 3 Q4_1, 7 Q5_0, 8 Q5_1, 9 Q8_0
  std::vector<int32_t> shape;  // PyTorch order (written reversed, as rwkv.cpp does)
  std::string data;            // raw bytes
};

struct BinHeader {
  uint32_t magic = 0x67676d66;
  int32_t version = 101;
  int32_t n_vocab = 4;
  int32_t n_embed = 32;
  int32_t n_layer = 1;
  int32_t data_type = 0;
};

inline void put_i32(std::string& s, int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) s += static_cast<char>((u >> (8 * i)) & 0xff);
}

inline std::string bin_header(const BinHeader& h = {}) {
  std::string s;
  put_i32(s, static_cast<int32_t>(h.magic));
  for (int32_t v : {h.version, h.n_vocab, h.n_embed, h.n_layer, h.data_type}) put_i32(s, v);
  return s;
}

inline std::string bin_record(const BinRecord& r) {
  std::string s;
  put_i32(s, static_cast<int32_t>(r.shape.size()));
  put_i32(s, static_cast<int32_t>(r.key.size()));
  put_i32(s, r.type);
  for (size_t i = r.shape.size(); i-- > 0;) put_i32(s, r.shape[i]);
  return s + r.key + r.data;
}

inline std::string bin_file(const std::vector<BinRecord>& records, const BinHeader& h = {}) {
  std::string s = bin_header(h);
  for (const BinRecord& r : records) s += bin_record(r);
  return s;
}

inline std::string f32_data(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

inline std::string f16_data(const std::vector<uint16_t>& v) {
  std::string s(v.size() * 2, '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// FP32 record of the given shape (PyTorch order) with values 0, 1, 2, ... times `scale`.
inline BinRecord f32_record(const std::string& key, std::vector<int32_t> shape,
                            float scale = 1.0f) {
  size_t n = 1;
  for (int32_t d : shape) n *= static_cast<size_t>(d);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * scale;
  return {key, 0, std::move(shape), f32_data(v)};
}

}  // namespace wkv::test
