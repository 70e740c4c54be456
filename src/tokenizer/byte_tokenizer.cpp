// The byte tokenizer: one token per byte, id = byte value (for byte-level models and tests).
#include "tokenizer/tokenizer.hpp"

namespace wkv {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view bytes) const override {
    std::vector<int32_t> out(bytes.size());
    for (size_t i = 0; i < bytes.size(); ++i) out[i] = static_cast<uint8_t>(bytes[i]);
    return out;
  }

  Expected<std::string> decode_bytes(std::span<const int32_t> ids) const override {
    std::string out(ids.size(), '\0');
    for (size_t k = 0; k < ids.size(); ++k) {
      if (ids[k] < 0 || ids[k] > 255)
        return Error{"token id " + std::to_string(ids[k]) + " (position " + std::to_string(k) +
                     ") is not a byte (the byte tokenizer has ids 0..255)"};
      out[k] = static_cast<char>(ids[k]);
    }
    return out;
  }

  int32_t vocab_size() const override { return 256; }
  std::string name() const override { return "bytes"; }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace wkv
