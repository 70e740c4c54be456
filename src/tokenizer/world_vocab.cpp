// World vocabulary file parser: line splitting, Python literal decoding, length/id checks.
#include "tokenizer/world_vocab.hpp"

#include <algorithm>
#include <cstdio>

#include "tokenizer/utf8.hpp"

namespace wkv {
namespace {

// `c` for an error message: printable ASCII as is, anything else as \xNN.
std::string show_char(char c) {
  auto b = static_cast<uint8_t>(c);
  if (b >= 0x20 && b < 0x7F) return std::string(1, c);
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", b);
  return buf;
}

// Text for an error message, cut to a readable length.
std::string show_text(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) out += show_char(s[i]);
  if (s.size() > kMax) out += "...";
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads exactly `digits` hex digits at lit[i...]; false if they are not all there.
bool read_hex(std::string_view lit, size_t i, int digits, uint32_t* value) {
  if (lit.size() - i < static_cast<size_t>(digits)) return false;
  uint32_t v = 0;
  for (int k = 0; k < digits; ++k) {
    int h = hex_value(lit[i + static_cast<size_t>(k)]);
    if (h < 0) return false;
    v = v * 16 + static_cast<uint32_t>(h);
  }
  *value = v;
  return true;
}

// A strictly decimal number (digits only, no sign or spaces) no larger than `max`.
bool parse_decimal(std::string_view s, uint64_t max, uint64_t* value) {
  if (s.empty() || s.size() > 12) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  *value = v;
  return true;
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Status parse_python_literal(std::string_view lit, std::string& out) {
  size_t i = 0;
  bool is_bytes = false;
  if (!lit.empty() && (lit[0] == 'b' || lit[0] == 'B')) {
    is_bytes = true;
    i = 1;
  } else if (!lit.empty() && (lit[0] == 'u' || lit[0] == 'U')) {
    i = 1;
  }
  if (i >= lit.size() || (lit[i] != '\'' && lit[i] != '"'))
    return Error{"expected a Python literal '...', \"...\" or b'...', got `" + show_text(lit) +
                 "`"};
  const char quote = lit[i++];
  if (lit.size() - i >= 2 && lit[i] == quote && lit[i + 1] == quote)
    return Error{"triple-quoted literals are not supported"};

  while (true) {
    if (i >= lit.size()) return Error{"unterminated string literal `" + show_text(lit) + "`"};
    const char c = lit[i];
    if (c == quote) {
      ++i;
      break;
    }
    if (c != '\\') {
      const auto b = static_cast<uint8_t>(c);
      if (b == 0) return Error{"NUL byte inside a literal"};
      if (is_bytes && b >= 0x80) return Error{"non-ASCII character inside a bytes literal"};
      out.push_back(c);  // str: the file was checked to be valid UTF-8 as a whole
      ++i;
      continue;
    }
    if (i + 1 >= lit.size()) return Error{"unterminated string literal (ends in a backslash)"};
    const char e = lit[i + 1];
    i += 2;
    switch (e) {
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        uint32_t v = static_cast<uint32_t>(e - '0');
        for (int k = 0; k < 2 && i < lit.size() && lit[i] >= '0' && lit[i] <= '7'; ++k, ++i)
          v = v * 8 + static_cast<uint32_t>(lit[i] - '0');
        if (is_bytes) {
          if (v > 0xFF) return Error{"octal escape above \\377 in a bytes literal"};
          out.push_back(static_cast<char>(v));
        } else {
          append_utf8(out, v);  // at most 0o777 = U+01FF
        }
        break;
      }
      case 'x': {
        uint32_t v;
        if (!read_hex(lit, i, 2, &v)) return Error{"truncated \\xhh escape"};
        i += 2;
        if (is_bytes)
          out.push_back(static_cast<char>(v));
        else
          append_utf8(out, v);  // a str literal: \xhh is the code point U+00hh
        break;
      }
      case 'u':
      case 'U': {
        if (is_bytes) return Error{std::string("unknown escape \\") + e + " in a bytes literal"};
        const int digits = e == 'u' ? 4 : 8;
        uint32_t v;
        if (!read_hex(lit, i, digits, &v))
          return Error{std::string("truncated \\") + e + " escape (needs " +
                       std::to_string(digits) + " hex digits)"};
        i += static_cast<size_t>(digits);
        if (v > 0x10FFFF) return Error{"\\U escape above U+10FFFF"};
        if (v >= 0xD800 && v <= 0xDFFF)
          return Error{"surrogate code point escape (cannot be UTF-8 encoded)"};
        append_utf8(out, v);
        break;
      }
      case 'N':
        if (!is_bytes) return Error{"\\N{...} escapes are not supported"};
        [[fallthrough]];
      default:
        return Error{"unknown escape \\" + show_char(e)};
    }
  }
  if (i != lit.size())
    return Error{"unexpected text after the string literal: `" + show_text(lit.substr(i)) + "`"};
  return Status::success();
}

Expected<WorldVocab> parse_world_vocab(std::string_view contents, std::string_view source) {
  const std::string src(source);
  if (contents.size() > kWorldMaxVocabBytes)
    return Error{src + ": vocabulary too large (" + std::to_string(contents.size()) +
                 " bytes, limit " + std::to_string(kWorldMaxVocabBytes) + ")"};

  // Python reads the file as UTF-8 text: any invalid byte fails the whole file.
  const size_t valid = utf8_valid_prefix(contents);
  if (valid != contents.size()) {
    size_t line = 1;
    for (size_t k = 0; k < valid; ++k) line += contents[k] == '\n';
    return Error{src + ":" + std::to_string(line) + ": not valid UTF-8 (byte " +
                 show_char(contents[valid]) + ")"};
  }

  WorldVocab vocab;
  vocab.bytes.reserve(contents.size());
  vocab.entries.reserve(contents.size() / 12 + 16);
  std::vector<uint32_t> line_of_id;  // 0 = id not seen yet

  uint32_t line_no = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();  // no final newline
    std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    auto fail = [&](const std::string& what) {
      return Error{src + ":" + std::to_string(line_no) + ": " + what};
    };

    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF
    if (line.find('\r') != std::string_view::npos)
      return fail("stray carriage return (lines must end in \\n or \\r\\n)");
    const size_t first = line.find(' ');
    const size_t last = line.rfind(' ');
    if (first == std::string_view::npos || first == last)
      return fail("expected `ID LITERAL LENGTH`, got `" + show_text(line) + "`");

    uint64_t id;
    if (!parse_decimal(line.substr(0, first), static_cast<uint64_t>(kWorldMaxId), &id) || id == 0)
      return fail("token id `" + show_text(line.substr(0, first)) + "` is not a number in 1.." +
                  std::to_string(kWorldMaxId));
    uint64_t declared;
    if (!parse_decimal(line.substr(last + 1), kWorldMaxVocabBytes, &declared))
      return fail("byte length `" + show_text(line.substr(last + 1)) + "` is not a number");

    const std::string_view literal = trim_blanks(line.substr(first + 1, last - first - 1));
    const size_t offset = vocab.bytes.size();
    if (Status st = parse_python_literal(literal, vocab.bytes); !st)
      return fail(st.error().message);
    const size_t length = vocab.bytes.size() - offset;
    if (length != declared)
      return fail("token is " + std::to_string(length) + " bytes but the line says " +
                  std::to_string(declared));
    if (length == 0) return fail("empty token");

    const auto idx = static_cast<size_t>(id);
    if (idx >= line_of_id.size()) line_of_id.resize(std::max(idx + 1, line_of_id.size() * 2), 0);
    if (line_of_id[idx] != 0)
      return fail("token id " + std::to_string(id) + " already defined on line " +
                  std::to_string(line_of_id[idx]));
    line_of_id[idx] = line_no;

    vocab.entries.push_back({static_cast<int32_t>(id), line_no, static_cast<uint32_t>(offset),
                             static_cast<uint32_t>(length)});
    vocab.max_id = std::max(vocab.max_id, static_cast<int32_t>(id));
  }
  if (vocab.entries.empty()) return Error{src + ": vocabulary has no tokens"};
  return vocab;
}

}  // namespace wkv
