// Utf8StreamDecoder rules (whole characters only, held incomplete tails, U+FFFD per maximal
// ill-formed subpart) and the byte tokenizer.
#include <random>

#include "tokenizer_test_util.hpp"

namespace wkv {
namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii text, long enough for the fast path"));
  EXPECT_TRUE(is_valid_utf8("\xC2\x80\xE4\xBD\xA0\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\x80"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("abc\xE4\xBD"));       // truncated
  EXPECT_EQ(utf8_valid_prefix("abcdefghij\xE4\xBD"), 10u);
  std::string s;
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u}) append_utf8(s, cp);
  EXPECT_EQ(s, "\x24\xC2\xA2\xE2\x82\xAC\xF0\x90\x8D\x88");
}

TEST(Utf8StreamDecoder, EmitsWholeCharactersAsSoonAsComplete) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push("ab\xF0\x9F"), "ab");
  EXPECT_EQ(d.pending(), "\xF0\x9F");
  EXPECT_EQ(d.push("\x98"), "");
  EXPECT_EQ(d.push("\x80" "c\xE4"), "\xF0\x9F\x98\x80" "c");
  EXPECT_EQ(d.push("\xBD\xA0"), "\xE4\xBD\xA0");
  EXPECT_EQ(d.pending(), "");
  EXPECT_EQ(d.flush(), "");
}

TEST(Utf8StreamDecoder, ReplacesInvalidBytesAndContinues) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push("\xFF"), kFFFD);                      // never valid
  EXPECT_EQ(d.push(" ok"), " ok");
  EXPECT_EQ(d.push("\xE4\xBD"), "");                     // held
  EXPECT_EQ(d.push("x"), kFFFD + "x");                   // cannot complete: one U+FFFD
  EXPECT_EQ(d.push("\xC0\xAF"), kFFFD + kFFFD);          // overlong lead, stray continuation
  EXPECT_EQ(d.push("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);  // surrogate: ED never completes
  EXPECT_EQ(d.push("\xF0\x9F\x98"), "");
  EXPECT_EQ(d.flush(), kFFFD);                           // incomplete at end
  EXPECT_EQ(d.pending(), "");
  EXPECT_EQ(d.push("\xE2\x82\xAC"), "\xE2\x82\xAC");     // usable after flush
}

TEST(Utf8StreamDecoder, ConcatenationOfValidInputIsTheInput) {
  std::mt19937 rng(7);
  const std::vector<uint32_t> cps = {0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000,
                                     0xFFFD, 0xFFFF, 0x10000, 0x10FFFF, 0x4E2D};
  for (int round = 0; round < 200; ++round) {
    std::string text;
    for (int k = 0; k < 50; ++k) append_utf8(text, cps[rng() % cps.size()]);
    Utf8StreamDecoder d;
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
      size_t n = std::min<size_t>(rng() % 6, text.size() - i);
      std::string piece = d.push(std::string_view(text).substr(i, n));
      EXPECT_TRUE(is_valid_utf8(piece));
      out += piece;
      i += n;
    }
    out += d.flush();
    ASSERT_EQ(out, text);
  }
}

TEST(Utf8StreamDecoder, OutputIsAlwaysValidUtf8) {
  std::mt19937 rng(11);
  for (int round = 0; round < 500; ++round) {
    Utf8StreamDecoder d;
    std::string out;
    for (int k = 0; k < 20; ++k) {
      std::string piece;
      for (size_t n = rng() % 5; n > 0; --n) piece.push_back(static_cast<char>(0x80 + rng() % 128));
      if (rng() % 3 == 0) piece.push_back('a');
      out += d.push(piece);
    }
    out += d.flush();
    ASSERT_TRUE(is_valid_utf8(out));
  }
}

TEST(ByteTokenizer, RoundTripsEveryByte) {
  auto t = make_byte_tokenizer();
  EXPECT_EQ(t->name(), "bytes");
  EXPECT_EQ(t->vocab_size(), 256);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  auto ids = t->encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[static_cast<size_t>(b)], b);
  auto back = t->decode_bytes(ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, all);
  for (int32_t bad : {-1, 256}) {
    std::vector<int32_t> v{65, bad};
    auto r = t->decode_bytes(v);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("token id " + std::to_string(bad) + " (position 1)"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace wkv
