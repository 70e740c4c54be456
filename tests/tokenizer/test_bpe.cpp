// GPT-NeoX-20B byte-level BPE (shared/vocab/20B_tokenizer.json) against the golden data made
// by Hugging Face `tokenizers` (shared/testdata/tokenizer/neox20b*.jsonl); a brute-force BPE
// reference on random long words; invalid UTF-8; small hand-written tokenizer.json files for
// the options the 20B file does not use; and load errors.
#include <utf8proc.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <unordered_map>

#include "tokenizer/bpe.hpp"
#include "tokenizer_test_util.hpp"

namespace wkv {
namespace {

using test::from_hex;
using test::to_hex;

constexpr std::string_view kFFFD = "\xEF\xBF\xBD";

std::string neox_path() { return test::shared_dir() + "/vocab/20B_tokenizer.json"; }

const Tokenizer* neox() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto t = load_bpe_tokenizer(neox_path());
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return t.ok() ? std::move(t).value() : nullptr;
  }();
  return tok.get();
}

std::string decode_ok(const Tokenizer& t, const std::vector<int32_t>& ids) {
  auto r = t.decode_bytes(ids);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::string();
}

// What Hugging Face's decode returns for valid ids: the bytes as lossy UTF-8.
std::string lossy(std::string_view bytes) {
  Utf8StreamDecoder d;
  std::string out = d.push(bytes);
  return out + d.flush();
}

TEST(BpeTokenizer, BasicProperties) {
  ASSERT_NE(neox(), nullptr);
  EXPECT_EQ(neox()->name(), "bpe");
  EXPECT_EQ(neox()->vocab_size(), 50277);
  EXPECT_EQ(neox()->encode("Hello world"), (std::vector<int32_t>{12092, 1533}));
  EXPECT_TRUE(neox()->encode("").empty());
  EXPECT_EQ(neox()->encode("a  b"), (std::vector<int32_t>{66, 50276, 67}));
  EXPECT_EQ(neox()->encode("<|endoftext|>"), std::vector<int32_t>{0});
  EXPECT_EQ(neox()->encode("x<|padding|>"), (std::vector<int32_t>{89, 1}));
}

TEST(BpeTokenizer, EncodesEveryGoldenCase) {
  ASSERT_NE(neox(), nullptr);
  auto cases = test::read_jsonl(test::testdata("tokenizer/neox20b.jsonl"));
  ASSERT_EQ(cases.size(), 357u);
  int not_nfc = 0;
  for (const auto& c : cases) {
    const std::string name = c["name"];
    const std::string text = c["text"];
    ASSERT_EQ(text.size(), c["n_bytes"].get<size_t>()) << name;
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(neox()->encode(text), expected) << name;
    const std::string decoded = decode_ok(*neox(), expected);
    if (c["decode_roundtrip"].get<bool>()) {
      EXPECT_EQ(to_hex(decoded), to_hex(text)) << name;
    } else {
      EXPECT_EQ(to_hex(decoded), to_hex(c["decoded"].get<std::string>())) << name;
    }
    // What the ids decode to is the NFC form of the text.
    EXPECT_EQ(to_hex(nfc_normalize(text)), to_hex(decoded)) << name;
    EXPECT_EQ(nfc_normalize(text) == text, c["is_nfc"].get<bool>()) << name;
    if (!c["is_nfc"].get<bool>()) ++not_nfc;
  }
  EXPECT_EQ(not_nfc, 16);
}

TEST(BpeTokenizer, DecodeCases) {
  ASSERT_NE(neox(), nullptr);
  int with_bytes = 0, unknown = 0;
  for (const auto& c : test::read_jsonl(test::testdata("tokenizer/neox20b_decode.jsonl"))) {
    const std::string name = c["name"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    auto r = neox()->decode_bytes(ids);
    if (!c["bytes_hex"].is_null()) {
      ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
      EXPECT_EQ(to_hex(*r), c["bytes_hex"].get<std::string>()) << name;
      // HF's decode(ids, skipSpecialTokens=false) is these bytes as lossy UTF-8.
      EXPECT_EQ(lossy(*r), c["decoded"].get<std::string>()) << name;
      if (c.contains("per_token_hex")) {
        const auto per_token = c["per_token_hex"].get<std::vector<std::string>>();
        ASSERT_EQ(per_token.size(), ids.size()) << name;
        for (size_t k = 0; k < ids.size(); ++k)
          EXPECT_EQ(to_hex(decode_ok(*neox(), {ids[k]})), per_token[k]) << name << " token " << k;
      }
      ++with_bytes;
      continue;
    }
    // HF skips ids without a token; we refuse them, naming the first one.
    ASSERT_FALSE(r.ok()) << name;
    int32_t first_bad = -1;
    for (int32_t id : ids)
      if (id < 0 || id >= 50277) {
        first_bad = id;
        break;
      }
    EXPECT_NE(r.error().message.find("token id " + std::to_string(first_bad)), std::string::npos)
        << r.error().message;
    ++unknown;
  }
  EXPECT_EQ(unknown, 2);
  EXPECT_EQ(with_bytes, 93);
}

TEST(BpeTokenizer, UnknownIdsAreErrors) {
  ASSERT_NE(neox(), nullptr);
  for (int32_t id : {-1, 50277, 65535, 1 << 30}) {
    auto r = neox()->decode_bytes(std::vector<int32_t>{12092, id});
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_NE(r.error().message.find("token id " + std::to_string(id) + " (position 1)"),
              std::string::npos)
        << r.error().message;
  }
  EXPECT_EQ(decode_ok(*neox(), {0}), "<|endoftext|>");
  EXPECT_EQ(decode_ok(*neox(), {50254}), std::string(24, ' '));
}

TEST(BpeTokenizer, StreamingGivesBackValidText) {
  ASSERT_NE(neox(), nullptr);
  int compared = 0;
  for (const auto& c : test::read_jsonl(test::testdata("tokenizer/neox20b_decode.jsonl"))) {
    if (c["kind"] != "stream") continue;
    const std::string name = c["name"];
    const std::string bytes = from_hex(c["bytes_hex"].get<std::string>());
    Utf8StreamDecoder dec;
    std::vector<std::string> chunks;
    std::string all;
    for (int32_t id : c["ids"].get<std::vector<int32_t>>()) {
      std::string piece = dec.push(decode_ok(*neox(), {id}));
      if (!piece.empty()) chunks.push_back(piece);
      all += piece;
    }
    all += dec.flush();
    EXPECT_EQ(all, lossy(bytes)) << name;
    // The official rule (print the pending text once it decodes without U+FFFD) prints the
    // same text in chunks that are unions of ours: we print each character as soon as it is
    // complete, so " " + half of "½" prints " " at once where the official loop waits.
    if (c["valid_utf8"].get<bool>() && bytes.find(kFFFD) == std::string::npos) {
      const auto official = c["stream_chunks"].get<std::vector<std::string>>();
      size_t k = 0;
      for (const std::string& chunk : official) {
        std::string joined;
        while (joined.size() < chunk.size() && k < chunks.size()) joined += chunks[k++];
        EXPECT_EQ(joined, chunk) << name;
      }
      EXPECT_EQ(k, chunks.size()) << name;
      ++compared;
    }
  }
  EXPECT_GT(compared, 40);
}

// ---------------------------------------------------------------------------------------------
// BPE against a brute-force reference (string symbols, rescanned after every merge).

struct ReferenceBpe {
  std::map<std::pair<std::string, std::string>, size_t> ranks;
  std::unordered_map<std::string, int32_t> vocab;
  std::string byte_char[256];

  ReferenceBpe() {
    std::ifstream in(neox_path());
    const auto j = nlohmann::json::parse(in);
    for (const auto& [tok, id] : j["model"]["vocab"].items()) vocab[tok] = id.get<int32_t>();
    const auto& merges = j["model"]["merges"];
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string m = merges[r];
      const auto sp = m.find(' ');
      ranks.emplace(std::make_pair(m.substr(0, sp), m.substr(sp + 1)), r);
    }
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      append_utf8(byte_char[b], static_cast<uint32_t>(printable ? b : 256 + extra++));
    }
  }

  std::vector<int32_t> word(std::string_view bytes) const {
    std::vector<std::string> syms;
    for (char c : bytes) syms.push_back(byte_char[static_cast<uint8_t>(c)]);
    for (;;) {
      size_t best = SIZE_MAX, at = 0;
      for (size_t i = 0; i + 1 < syms.size(); ++i) {
        auto it = ranks.find({syms[i], syms[i + 1]});
        if (it != ranks.end() && it->second < best) {
          best = it->second;
          at = i;
        }
      }
      if (best == SIZE_MAX) break;
      syms[at] += syms[at + 1];
      syms.erase(syms.begin() + static_cast<ptrdiff_t>(at) + 1);
    }
    std::vector<int32_t> ids;
    for (const auto& s : syms) ids.push_back(vocab.at(s));
    return ids;
  }
};

TEST(BpeTokenizer, MatchesBruteForceOnRandomWords) {
  ASSERT_NE(neox(), nullptr);
  const ReferenceBpe ref;
  std::mt19937 rng(42);
  // Letters only, so that each string is one pre-tokenizer word; lengths on both sides of the
  // scan/heap switch. Plus a space prefix (" ?\p{L}+") and digits (" ?\p{N}+").
  const std::string alphabets[] = {"abcdefghijklmnopqrstuvwxyz", "aeinrst", "ab", "eh"};
  for (int round = 0; round < 160; ++round) {
    const std::string& a = alphabets[static_cast<size_t>(round) % 4];
    std::string w = (round % 3 == 0) ? " " : "";
    const size_t len = 2 + rng() % (round % 2 ? 40 : 200);
    for (size_t k = 0; k < len; ++k) w.push_back(a[rng() % a.size()]);
    ASSERT_EQ(neox()->encode(w), ref.word(w)) << w;
    std::string digits = " ";
    for (size_t k = 0; k < len; ++k) digits.push_back(static_cast<char>('0' + rng() % 10));
    ASSERT_EQ(neox()->encode(digits), ref.word(digits)) << digits;
  }
}

// ---------------------------------------------------------------------------------------------
// Any bytes: encoding never fails and decodes back to the NFC form, less the bytes that have
// no token in the 20B vocabulary (C0, C1, F5..FF: never part of valid UTF-8).

std::string without_tokenless_bytes(std::string s) {
  std::erase_if(s, [](char c) {
    const auto b = static_cast<uint8_t>(c);
    return b == 0xC0 || b == 0xC1 || b >= 0xF5;
  });
  return s;
}

TEST(BpeTokenizer, AnyBytesRoundTripThroughNfc) {
  ASSERT_NE(neox(), nullptr);
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {" ",
                                           "  ",
                                           "   ",
                                           "\n",
                                           "\t",
                                           "a",
                                           "Z",
                                           "'s",
                                           "'",
                                           "7",
                                           "<|endoftext|>",
                                           "<|pad",
                                           "\xC3\xA9",
                                           "e\xCC\x81",
                                           "\xEF\xBF\xBD",
                                           "\xF0\x9F\x98\x80",
                                           "\xE4\xBD\xA0",
                                           "\xC2\xA0",
                                           "\xE3\x80\x80",
                                           "\xCC\x81",
                                           "\x80",
                                           "\xFF",
                                           "\xF0\x9F",
                                           "\xED\xA0\x80",
                                           "\xC0\xAF",
                                           ".",
                                           "\xE2\x84\xAB",
                                           "\xEA\xB0\x80\xE1\x86\xA8",
                                           "\x00"};
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) {
      if (rng() % 5 == 0)
        s.push_back(static_cast<char>(rng() % 256));
      else
        s += pieces[rng() % pieces.size()];
    }
    const auto ids = neox()->encode(s);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 50277) << to_hex(s);
    ASSERT_EQ(to_hex(decode_ok(*neox(), ids)), to_hex(without_tokenless_bytes(nfc_normalize(s))))
        << to_hex(s);
    if (is_valid_utf8(s)) {
      ASSERT_EQ(decode_ok(*neox(), ids), nfc_normalize(s)) << to_hex(s);
    }
  }
}

// utf8proc's NFC of the whole string, without nfc_normalize's shortcuts.
std::string plain_nfc(std::string_view s) {
  utf8proc_uint8_t* dst = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                              static_cast<utf8proc_ssize_t>(s.size()), &dst,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  EXPECT_GE(n, 0);
  std::string out(reinterpret_cast<const char*>(dst), n > 0 ? static_cast<size_t>(n) : 0);
  std::free(dst);
  return out;
}

std::string utf8(uint32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

TEST(BpeTokenizer, NfcShortcutsMatchPlainNfc) {
  // The characters nfc_normalize copies without utf8proc (nfc_boundary_before in bpe.cpp):
  // each is NFC, has combining class 0 and does not compose with what precedes it.
  const std::pair<uint32_t, uint32_t> ranges[] = {
      {0x0, 0x2FF},     {0x400, 0x482},   {0x2010, 0x2027}, {0x3000, 0x3029}, {0x3041, 0x3096},
      {0x30A1, 0x30FA}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0xFF01, 0xFF60}};
  const std::string before[] = {"a",          "e",          utf8(0x1100), utf8(0xAC00),
                                utf8(0x0915), utf8(0x0B47), utf8(0x304B), utf8(0x0627),
                                "e\xCC\x81",  utf8(0x0BC6)};
  for (auto [lo, hi] : ranges) {
    for (uint32_t cp = lo; cp <= hi; ++cp) {
      ASSERT_EQ(utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class, 0) << cp;
      const std::string c = utf8(cp);
      ASSERT_EQ(plain_nfc(c), c) << cp;
      for (const auto& b : before) ASSERT_EQ(plain_nfc(b + c), plain_nfc(b) + c) << cp;
    }
  }
  // Random mixtures of boundary characters, marks, jamo and composites.
  const std::vector<uint32_t> cps = {'a',    'e',    'A',    ' ',    0xE9,   0x301,  0x323,
                                     0x307,  0x30A,  0x5B4,  0x5BC,  0x651,  0x64E,  0x1100,
                                     0x1161, 0x11A8, 0xAC00, 0x304B, 0x3099, 0x212B, 0xF900,
                                     0x0915, 0x093C, 0x0958, 0x4E00, 0x3002, 0x0B47, 0x0B3E,
                                     0x0439, 0x0306, 0x1E0A, 0x0387, 0x2026, 0xFF21};
  std::mt19937 rng(3);
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += utf8(cps[rng() % cps.size()]);
    ASSERT_EQ(to_hex(nfc_normalize(s)), to_hex(plain_nfc(s))) << to_hex(s);
  }
}

TEST(BpeTokenizer, Nfc) {
  EXPECT_EQ(nfc_normalize("e\xCC\x81"), "\xC3\xA9");                     // e + acute -> é
  EXPECT_EQ(nfc_normalize("\xE2\x84\xAB"), "\xC3\x85");                  // U+212B -> U+00C5
  EXPECT_EQ(nfc_normalize("\xEF\xA4\x80"), "\xE8\xB1\x88");              // U+F900 -> U+8C48
  EXPECT_EQ(nfc_normalize("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // jamo -> 가
  EXPECT_EQ(nfc_normalize("a\xFF"
                          "e\xCC\x81"),
            "a\xFF\xC3\xA9");  // invalid byte kept
  EXPECT_EQ(nfc_normalize(std::string("x\0y", 3)), std::string("x\0y", 3));
  EXPECT_EQ(nfc_normalize(""), "");
}

// ---------------------------------------------------------------------------------------------
// Small tokenizer.json files written here: options and load errors.

// A byte-level tokenizer.json: the 256 byte tokens (ids 0..255 in byte order), `extra_vocab`
// and `merges` appended, and the given added_tokens / pre_tokenizer.
std::string tiny_json(
    const std::vector<std::string>& merges, const std::string& added = "[]",
    const std::string& pre = R"({"type": "ByteLevel", "add_prefix_space": false})",
    const std::string& normalizer = R"({"type": "NFC"})") {
  nlohmann::json vocab = nlohmann::json::object();
  int extra = 0;
  std::string chars[256];
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    append_utf8(chars[b], static_cast<uint32_t>(printable ? b : 256 + extra++));
    vocab[chars[b]] = b;
  }
  int next_id = 256;
  for (const auto& m : merges) {
    const auto sp = m.find(' ');
    vocab[m.substr(0, sp) + m.substr(sp + 1)] = next_id++;
  }
  nlohmann::json j = {
      {"added_tokens", nlohmann::json::parse(added)},
      {"normalizer", nlohmann::json::parse(normalizer)},
      {"pre_tokenizer", nlohmann::json::parse(pre)},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
  };
  return j.dump();
}

std::unique_ptr<Tokenizer> tiny(const std::string& json_text) {
  auto t = parse_bpe_tokenizer(json_text, "tiny.json");
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(BpeTokenizer, TinyMergesAndPrefixSpace) {
  // ids: "Ġa" 256, "ab" 257, "Ġab" 258 (Ġ is the byte table's space)
  const std::vector<std::string> merges = {"\xC4\xA0 a", "a b",
                                           "\xC4\xA0"
                                           "a b"};
  auto t = tiny(tiny_json(merges));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 259);
  EXPECT_EQ(t->encode("ab ab"), (std::vector<int32_t>{257, 258}));
  EXPECT_EQ(t->encode("abab"), (std::vector<int32_t>{257, 257}));
  EXPECT_EQ(decode_ok(*t, {257, 258}), "ab ab");
  auto p = tiny(tiny_json(merges, "[]", R"({"type": "ByteLevel", "add_prefix_space": true})"));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->encode("ab"), (std::vector<int32_t>{258}));
  EXPECT_EQ(p->encode(" ab"), (std::vector<int32_t>{258}));
  auto nr = tiny(tiny_json(merges, "[]", R"({"type": "ByteLevel", "use_regex": false,
                                            "add_prefix_space": false})"));
  ASSERT_NE(nr, nullptr);
  EXPECT_EQ(nr->encode("ab!ab"), (std::vector<int32_t>{257, '!', 257}));
  EXPECT_EQ(nr->encode("ab ab"), (std::vector<int32_t>{257, 258}));
}

TEST(BpeTokenizer, TinyAddedTokenFlags) {
  const std::string added = R"([
    {"id": 300, "content": "<s>", "special": true, "normalized": false},
    {"id": 301, "content": "cat", "single_word": true, "normalized": true},
    {"id": 302, "content": "[L]", "lstrip": true, "normalized": false},
    {"id": 303, "content": "[R]", "rstrip": true, "normalized": false},
    {"id": 304, "content": "\u00e9", "normalized": true}])";
  auto t = tiny(tiny_json({}, added));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 305);
  EXPECT_EQ(t->encode("x<s>y"), (std::vector<int32_t>{'x', 300, 'y'}));
  EXPECT_EQ(t->encode("a cat."), (std::vector<int32_t>{'a', ' ', 301, '.'}));
  EXPECT_EQ(t->encode("cats"), (std::vector<int32_t>{'c', 'a', 't', 's'}));  // not a single word
  EXPECT_EQ(t->encode("x  [L]y"), (std::vector<int32_t>{'x', 302, 'y'}));
  EXPECT_EQ(t->encode("x[R] \n y"), (std::vector<int32_t>{'x', 303, 'y'}));
  // normalized: true tokens match the NFC text: e + U+0301 is é.
  EXPECT_EQ(t->encode("e\xCC\x81"), std::vector<int32_t>{304});
  EXPECT_EQ(decode_ok(*t, {300, 301}), "<s>cat");
  auto r = t->decode_bytes(std::vector<int32_t>{299});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("token id 299 (position 0)"), std::string::npos);
}

TEST(BpeTokenizer, TinyWithoutNormalizer) {
  auto t = tiny(tiny_json({}, "[]", R"({"type": "ByteLevel", "add_prefix_space": false})", "null"));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(decode_ok(*t, t->encode("e\xCC\x81")), "e\xCC\x81");
}

std::string load_error(const std::string& json_text) {
  auto t = parse_bpe_tokenizer(json_text, "bad.json");
  EXPECT_FALSE(t.ok());
  return t.ok() ? std::string() : t.error().message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(BpeTokenizer, MissingFileNamesIt) {
  auto t = load_bpe_tokenizer("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(contains(t.error().message, "/nonexistent/dir/tokenizer.json")) << t.error().message;
  EXPECT_TRUE(contains(t.error().message, "not found")) << t.error().message;
  EXPECT_TRUE(contains(t.error().message, "20B_tokenizer.json")) << t.error().message;
  auto d = load_bpe_tokenizer(test::shared_dir() + "/vocab");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.error().message, "directory")) << d.error().message;
}

TEST(BpeTokenizer, LoadErrorsNameTheField) {
  EXPECT_TRUE(contains(load_error("{\"model\": "), "bad.json: invalid JSON"));
  EXPECT_TRUE(contains(load_error("[1, 2]"), "bad.json: expected a JSON object"));
  EXPECT_TRUE(contains(load_error(std::string(100, '[') + std::string(100, ']')), "nested"));

  auto j = nlohmann::json::parse(tiny_json({"a b"}));
  auto without = [&](auto edit) {
    auto k = j;
    edit(k);
    return load_error(k.dump());
  };
  EXPECT_TRUE(contains(without([](auto& k) { k["model"].erase("merges"); }),
                       "bad.json: model.merges: expected an array, got missing"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"].erase("vocab"); }), "model.vocab"));
  EXPECT_TRUE(contains(without([](auto& k) { k.erase("model"); }), "bad.json: model:"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["merges"].push_back("a q"); }),
                       "model.merges[1]: merged token \"aq\" is not in model.vocab"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["merges"].push_back("a  b"); }),
                       "model.merges[1]: \"a  b\" is not two tokens"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["merges"].push_back(7); }),
                       "model.merges[1]: expected"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["vocab"].erase("a"); }),
                       "model.vocab: no token for the byte 0x61"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["vocab"]["zz"] = "x"; }),
                       "model.vocab[\"zz\"]: id is not an integer"));
  EXPECT_TRUE(
      contains(without([](auto& k) { k["model"]["vocab"]["zz"] = 1 << 30; }), "out of range"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["vocab"]["zz"] = 5; }),
                       "model.vocab: id 5 is used by both"));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["type"] = "WordPiece"; }),
                       "model.type: unsupported model \"WordPiece\""));
  EXPECT_TRUE(contains(without([](auto& k) { k["model"]["dropout"] = 0.1; }), "model.dropout"));
  EXPECT_TRUE(contains(without([](auto& k) {
                         k["normalizer"] = {{"type", "NFKC"}};
                       }),
                       "normalizer.type: unsupported normalizer \"NFKC\""));
  EXPECT_TRUE(contains(without([](auto& k) { k["pre_tokenizer"] = nullptr; }),
                       "pre_tokenizer: expected a ByteLevel"));
  EXPECT_TRUE(contains(without([](auto& k) { k["pre_tokenizer"]["add_prefix_space"] = 1; }),
                       "pre_tokenizer.add_prefix_space: expected true or false"));
  EXPECT_TRUE(contains(without([](auto& k) {
                         k["decoder"] = {{"type", "WordPiece"}};
                       }),
                       "decoder.type: unsupported"));
  auto with_added = [&](const char* added) {
    return without([&](auto& k) { k["added_tokens"] = nlohmann::json::parse(added); });
  };
  EXPECT_TRUE(contains(with_added(R"([{"id": 3}])"),
                       "added_tokens[0].content: expected a non-empty string"));
  EXPECT_TRUE(contains(with_added(R"([{"id": -3, "content": "x"}])"),
                       "added_tokens[0].id: -3 is out of range"));
  EXPECT_TRUE(contains(with_added(R"([{"id": 3, "content": "x", "lstrip": "yes"}])"),
                       "added_tokens[0].lstrip: expected true or false"));
  EXPECT_TRUE(contains(with_added(R"([{"id": 300, "content": "x"}, {"id": 301, "content": "x"}])"),
                       "added_tokens[1].content: \"x\" is the same as added_tokens[0]"));
}

}  // namespace
}  // namespace wkv
