// The World vocab parser: file variants it must accept (CRLF, no final newline), Python
// literal decoding, and the errors (with file and line) for malformed input.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tokenizer/world_vocab.hpp"
#include "tokenizer_test_util.hpp"

namespace wkv {
namespace {

using test::to_hex;
using test::world;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string write_temp(const std::string& name, const std::string& contents) {
  std::string path = test::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// Every id decodes to the same bytes in both tokenizers.
void expect_same_vocab(const Tokenizer& a, const Tokenizer& b) {
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  std::vector<int32_t> all;
  for (int32_t id = 0; id < a.vocab_size(); ++id) all.push_back(id);
  auto da = a.decode_bytes(all);
  auto db = b.decode_bytes(all);
  ASSERT_TRUE(da.ok() && db.ok());
  EXPECT_EQ(*da, *db);
}

TEST(WorldVocab, AcceptsCrlfLineEnds) {
  ASSERT_NE(world(), nullptr);
  std::string lf = read_all(test::world_vocab_path()), crlf;
  for (char c : lf) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  const std::string path = write_temp("vocab_crlf.txt", crlf);
  auto t = load_world_tokenizer(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(t.ok()) << t.error().message;
  expect_same_vocab(*world(), **t);
}

TEST(WorldVocab, AcceptsMissingFinalNewline) {
  ASSERT_NE(world(), nullptr);
  std::string text = read_all(test::world_vocab_path());
  ASSERT_EQ(text.back(), '\n');
  text.pop_back();
  const std::string path = write_temp("vocab_nofinal.txt", text);
  auto t = load_world_tokenizer(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(t.ok()) << t.error().message;
  expect_same_vocab(*world(), **t);
  // And CRLF without the final line end.
  text = read_all(test::world_vocab_path());
  std::string crlf;
  for (char c : text) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  crlf.resize(crlf.size() - 2);
  auto t2 = parse_world_tokenizer(crlf, "crlf_nofinal");
  ASSERT_TRUE(t2.ok()) << t2.error().message;
  expect_same_vocab(*world(), **t2);
}

TEST(WorldVocab, MissingFileSaysWhereToGetIt) {
  auto t = load_world_tokenizer(test::temp_dir() + "/no_such_vocab.txt");
  ASSERT_FALSE(t.ok());
  const std::string& m = t.error().message;
  EXPECT_NE(m.find("no_such_vocab.txt"), std::string::npos) << m;
  EXPECT_NE(m.find("rwkv_vocab_v20230424.txt"), std::string::npos) << m;
  EXPECT_NE(m.find("BlinkDL/ChatRWKV"), std::string::npos) << m;
  EXPECT_NE(m.find("pip"), std::string::npos) << m;
}

TEST(WorldVocab, RejectsOversizedFile) {
  std::string path = test::temp_dir() + "/huge_vocab.txt";
  { std::ofstream(path) << "1 'a' 1\n"; }
  std::filesystem::resize_file(path, kWorldMaxVocabBytes + 1);  // sparse, instant
  auto t = load_world_tokenizer(path);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("too large"), std::string::npos) << t.error().message;
  std::filesystem::remove(path);
}

std::string literal(std::string_view lit) {
  std::string out;
  Status st = parse_python_literal(lit, out);
  EXPECT_TRUE(st.ok()) << lit << ": " << (st.ok() ? "" : st.error().message);
  return to_hex(out);
}

std::string literal_error(std::string_view lit) {
  std::string out;
  Status st = parse_python_literal(lit, out);
  EXPECT_FALSE(st.ok()) << lit << " parsed as " << to_hex(out);
  return st.ok() ? "" : st.error().message;
}

TEST(WorldVocab, PythonLiterals) {
  EXPECT_EQ(literal("'a b'"), "612062");
  EXPECT_EQ(literal("'\\x80'"), "c280");  // str: code point U+0080, UTF-8 encoded
  EXPECT_EQ(literal("b'\\x80'"), "80");   // bytes: the raw byte
  EXPECT_EQ(literal("B'\\xFf'"), "ff");
  EXPECT_EQ(literal("\"it's\""), "69742773");
  EXPECT_EQ(literal("'\\'\\\"\\\\'"), "27225c");
  EXPECT_EQ(literal("'\\n\\t\\r\\a\\b\\f\\v'"), "0a090d07080c0b");
  EXPECT_EQ(literal("'\\u4e2d'"), "e4b8ad");
  EXPECT_EQ(literal("'\\U0001F600'"), "f09f9880");
  EXPECT_EQ(literal("'\\0'"), "00");
  EXPECT_EQ(literal("'\\101\\0101'"), "410831");  // up to 3 octal digits
  EXPECT_EQ(literal("'\\777'"), "c7bf");           // str: U+01FF
  EXPECT_EQ(literal("b'\\377'"), "ff");
  EXPECT_EQ(literal("u'\xe4\xb8\xad'"), "e4b8ad");  // raw UTF-8 in a str literal
  EXPECT_EQ(literal("''"), "");

  EXPECT_NE(literal_error("'\\q'").find("unknown escape \\q"), std::string::npos);
  EXPECT_NE(literal_error("b'\\u00e9'").find("unknown escape \\u"), std::string::npos);
  EXPECT_NE(literal_error("b'\\N{DASH}'").find("unknown escape \\N"), std::string::npos);
  EXPECT_NE(literal_error("'\\N{EM DASH}'").find("\\N{...}"), std::string::npos);
  EXPECT_NE(literal_error("'\\x4'").find("truncated"), std::string::npos);
  EXPECT_NE(literal_error("'\\u12'").find("truncated"), std::string::npos);
  EXPECT_NE(literal_error("'\\ud800'").find("surrogate"), std::string::npos);
  EXPECT_NE(literal_error("'\\U00110000'").find("10FFFF"), std::string::npos);
  EXPECT_NE(literal_error("b'\\777'").find("octal"), std::string::npos);
  EXPECT_NE(literal_error("b'\xc3\xa9'").find("non-ASCII"), std::string::npos);
  EXPECT_NE(literal_error("'abc").find("unterminated"), std::string::npos);
  EXPECT_NE(literal_error("'abc\\'").find("unterminated"), std::string::npos);
  EXPECT_NE(literal_error("'a' 'b'").find("after the string literal"), std::string::npos);
  EXPECT_NE(literal_error("'a\"").find("unterminated"), std::string::npos);
  EXPECT_NE(literal_error("r'a'").find("expected a Python literal"), std::string::npos);
  EXPECT_NE(literal_error("abc").find("expected a Python literal"), std::string::npos);
  EXPECT_NE(literal_error("'''a'''").find("triple"), std::string::npos);
  EXPECT_NE(literal_error(std::string_view("'a\0b'", 5)).find("NUL"), std::string::npos);
}

// A minimal valid vocabulary: the 256 single bytes as ids 1..256, then `extra` lines.
std::string byte_vocab(const std::string& extra = "") {
  std::string s;
  char buf[32];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "%d b'\\x%02x' 1\n", b + 1, b);
    s += buf;
  }
  return s + extra;
}

TEST(WorldVocab, SmallVocabularyWorks) {
  auto t = parse_world_tokenizer(byte_vocab("257 'ab' 2\n258 'abc' 3\n300 ' a b' 4\n"), "small");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ((*t)->vocab_size(), 301);
  EXPECT_EQ((*t)->encode("abcab a b"), (std::vector<int32_t>{258, 257, 300}));
  EXPECT_EQ((*t)->encode("aba"), (std::vector<int32_t>{257, 98}));
  std::vector<int32_t> gap{299};
  EXPECT_FALSE((*t)->decode_bytes(gap).ok());  // ids 259..299 are not defined
}

// parse_world_tokenizer(byte_vocab() + extra) fails with "<source>:<line>: ..." containing `what`.
void expect_error(const std::string& extra, int line, const std::string& what) {
  auto t = parse_world_tokenizer(byte_vocab(extra), "v.txt");
  ASSERT_FALSE(t.ok()) << "accepted: " << extra;
  const std::string& m = t.error().message;
  EXPECT_NE(m.find("v.txt:" + std::to_string(line) + ": "), std::string::npos) << m;
  EXPECT_NE(m.find(what), std::string::npos) << m;
}

TEST(WorldVocab, RejectsMalformedLinesNamingTheLine) {
  expect_error("257 'ab' 3\n", 257, "2 bytes but the line says 3");
  expect_error("257 'ab' 2\n258 '\\x80' 1\n", 258, "2 bytes but the line says 1");
  expect_error("257 'ab' 2\n258 'a\\qb' 3\n", 258, "unknown escape \\q");
  expect_error("257 'ab 2\n", 257, "unterminated");
  expect_error("257'ab' 2\n", 257, "expected `ID LITERAL LENGTH`");
  expect_error("257\n", 257, "expected `ID LITERAL LENGTH`");
  expect_error("\n257 'ab' 2\n", 257, "expected `ID LITERAL LENGTH`");  // empty line
  expect_error("x57 'ab' 2\n", 257, "token id `x57`");
  expect_error("+257 'ab' 2\n", 257, "token id `+257`");
  expect_error("0 'ab' 2\n", 257, "token id `0`");
  expect_error("99999999 'ab' 2\n", 257, "is not a number in 1..");
  expect_error("257 'ab' two\n", 257, "byte length `two`");
  expect_error("257 'ab' -2\n", 257, "byte length `-2`");
  expect_error("5 'zz' 2\n", 257, "token id 5 already defined on line 5");
  expect_error("257 'ab' 2\n300 'a' 1\n", 258, "same bytes as id 98 (line 98)");
  expect_error("257 '' 0\n", 257, "empty token");
  expect_error("257 'a' 'b' 2\n", 257, "after the string literal");
  expect_error("257 b'\xc3\xa9' 2\n", 257, "non-ASCII");
  expect_error("257 '\\ud83d' 3\n", 257, "surrogate");
  expect_error("257 'a\rb' 3\n", 257, "carriage return");
  expect_error("257 '\xff' 1\n", 257, "not valid UTF-8");
  expect_error("257 'ab' 2\n258 '\xe4\xb8' 2\n", 258, "not valid UTF-8");
}

TEST(WorldVocab, RejectsVocabularyMissingASingleByte) {
  std::string v = byte_vocab();
  v.erase(v.find("66 b'\\x41' 1\n"), 13);
  auto t = parse_world_tokenizer(v, "v.txt");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("single byte 0x41"), std::string::npos) << t.error().message;
  auto empty = parse_world_tokenizer("", "empty.txt");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("no tokens"), std::string::npos);
}

TEST(WorldVocab, ParsesTheOfficialFileFast) {
  // Not a benchmark; only a guard against pathological slowness (e.g. quadratic parsing).
  std::string text = read_all(test::world_vocab_path());
  auto start = std::chrono::steady_clock::now();
  auto t = parse_world_tokenizer(text, "rwkv_vocab_v20230424.txt");
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_LT(ms, 2000.0);
  std::printf("World vocab parse + trie build: %.1f ms\n", ms);
}

}  // namespace
}  // namespace wkv
