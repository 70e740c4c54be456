// load_pth on crafted checkpoints: pickle variants, strides/offsets, zip variants, and hostile
// zips and pickles that must all end in a clean error naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "builders.hpp"
#include "formats/formats.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

using test::as_bytes;
using test::PickleWriter;
using test::TensorSpec;

const std::string kName = "crafted.pth";

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

// A checkpoint with two tensors sharing storage "0" (12 floats): a [3,4] matrix and its
// transposed view at offset 1 shaped [3,2]; plus an int64 vector.
std::string sample_pth(test::ZipOptions opt = {}, bool deflate = false, bool ordered = true,
                       bool parameter = false) {
  std::vector<TensorSpec> specs{
      {"w", "FloatStorage", "0", 12, 0, {3, 4}, {4, 1}, parameter},
      {"wt", "FloatStorage", "0", 12, 1, {3, 2}, {1, 4}, false},
      {"idx", "LongStorage", "1", 3, 0, {3}, {1}, false},
  };
  std::map<std::string, std::string> storages{
      {"0", test::raw(iota(12))}, {"1", test::raw(std::vector<int64_t>{7, -8, 9})}};
  return test::pth_bytes(test::state_dict_pickle(specs, ordered), storages, "archive", opt, deflate);
}

void expect_sample(const Expected<TensorMap>& r) {
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  const Tensor& w = r->at("w");
  EXPECT_EQ(w.dtype, DType::f32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(to_f32(w), iota(12));
  const Tensor& wt = r->at("wt");
  EXPECT_EQ(wt.strides, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(to_f32(wt), (std::vector<float>{1, 5, 2, 6, 3, 7}));
  const Tensor& idx = r->at("idx");
  EXPECT_EQ(idx.dtype, DType::i64);
  EXPECT_EQ(to_f32(idx), (std::vector<float>{7, -8, 9}));
}

TEST(Pth, CraftedCheckpointLoads) {
  const std::string b = sample_pth();
  expect_sample(load_pth_from_memory(kName, as_bytes(b)));
}

TEST(Pth, PlainDictAndParameters) {
  const std::string b = sample_pth({}, false, /*ordered=*/false, /*parameter=*/true);
  expect_sample(load_pth_from_memory(kName, as_bytes(b)));
}

TEST(Pth, Zip64AndDataDescriptors) {
  const std::string b = sample_pth({.zip64 = true, .descriptor = true});
  expect_sample(load_pth_from_memory(kName, as_bytes(b)));
}

TEST(Pth, UnalignedEntriesAreCopied) {
  const std::string b = sample_pth({.align = 1});
  auto r = load_pth_from_memory(kName, as_bytes(b));
  expect_sample(r);
  for (const auto& [n, t] : *r) EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype), 0u) << n;
}

TEST(Pth, DeflatedStorages) {
  const std::string b = sample_pth({}, /*deflate=*/true);
  expect_sample(load_pth_from_memory(kName, as_bytes(b)));
}

TEST(Pth, StoredDataIsNotCopied) {
  const std::string b = sample_pth();
  auto r = load_pth_from_memory(kName, as_bytes(b));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::byte* lo = as_bytes(b).data();
  for (const auto& [n, t] : *r) {
    EXPECT_GE(t.data, lo) << n;
    EXPECT_LT(t.data, lo + b.size()) << n;
  }
}

// Protocol 4 style: FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE, BINGET, torch.device.
TEST(Pth, Protocol4Opcodes) {
  PickleWriter w;
  auto sstr = [&](const std::string& s) {
    w.op(0x8c).op(static_cast<uint8_t>(s.size()));
    w.out += s;
  };
  w.proto(4).op(0x95);
  test::put64(w.out, 0);
  sstr("collections");
  sstr("OrderedDict");
  w.op(0x93).op(0x94).op(')').reduce().op(0x94);  // memo 0 = OrderedDict class, memo 1 = dict
  sstr("t");
  sstr("torch._utils");
  sstr("_rebuild_tensor_v2");
  w.op(0x93).mark();
  w.mark();
  sstr("storage");
  sstr("torch");
  sstr("BFloat16Storage");
  w.op(0x93);
  sstr("k");
  sstr("torch");
  sstr("device");
  w.op(0x93);
  sstr("cpu");
  w.op(0x85).reduce();  // torch.device('cpu') as location
  w.integer(4).tuple().op('Q');
  w.integer(0).integer(2).integer(2).op(0x86).integer(2).integer(1).op(0x86).op(0x89);
  w.op('h').op(0).op(')').reduce();  // OrderedDict() from memo
  w.tuple().reduce().op('s').stop();
  std::vector<uint16_t> bf{0x3f80, 0x4000, 0x4040, 0x4080};
  const std::string b = test::pth_bytes(w.out, {{"k", test::raw(bf)}}, "model");
  auto r = load_pth_from_memory(kName, as_bytes(b));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->at("t").dtype, DType::bf16);
  EXPECT_EQ(to_f32(r->at("t")), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Pth, ByteOrder) {
  const std::string pkl = test::state_dict_pickle({{"x", "FloatStorage", "0", 1, 0, {1}, {1}}});
  for (const char* order : {"little", "big"}) {
    auto z = test::build_zip({{"archive/data.pkl", pkl},
                              {"archive/byteorder", order},
                              {"archive/data/0", test::raw(std::vector<float>{1})}});
    auto r = load_pth_from_memory(kName, as_bytes(z.bytes));
    if (std::string(order) == "little") {
      EXPECT_TRUE(r.ok()) << r.error().message;
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("byteorder"), std::string::npos) << r.error().message;
    }
  }
}

// ---- hostile inputs -------------------------------------------------------------------------

std::string error_of(const std::string& bytes, const std::string& name = kName) {
  auto r = load_pth_from_memory(name, as_bytes(bytes));
  if (r.ok()) return "<loaded>";
  EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  return r.error().message;
}

#define EXPECT_ERROR_HAS(bytes, text)                                    \
  do {                                                                   \
    const std::string m_ = error_of(bytes);                              \
    EXPECT_NE(m_.find(text), std::string::npos) << "message: " << m_;   \
  } while (0)

TEST(PthHostile, TruncatedAnywhere) {
  const std::string b = sample_pth();
  for (size_t cut = 0; cut < b.size(); cut += (cut < 64 || b.size() - cut < 256) ? 1 : 37) {
    auto r = load_pth_from_memory(kName, as_bytes(b.substr(0, cut)));
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_NE(r.error().message.find(kName), std::string::npos) << r.error().message;
  }
}

TEST(PthHostile, TruncatedRealFile) {
  const std::string path = test::testdata("models/v7.0_random/model.pth");
  std::ifstream in(path, std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(b.size(), 100000u);
  const std::string tmp = test::temp_dir() + "/truncated.pth";
  for (size_t cut : {size_t{0}, size_t{3}, size_t{100}, b.size() / 2, b.size() - 23, b.size() - 1}) {
    std::ofstream(tmp, std::ios::binary).write(b.data(), static_cast<std::streamsize>(cut));
    auto r = load_pth(tmp);
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_NE(r.error().message.find(tmp), std::string::npos) << r.error().message;
  }
  std::filesystem::remove(tmp);
}

TEST(PthHostile, CorruptCentralDirectory) {
  auto z = test::build_zip({{"a/data.pkl", "x"}, {"a/data/0", "yyyy"}});
  std::string bad_sig = z.bytes;
  bad_sig[z.central_offsets[1]] = 'Q';
  EXPECT_ERROR_HAS(bad_sig, "bad signature");
  std::string bad_offset = z.bytes;
  test::patch32(bad_offset, z.eocd_offset + 16, static_cast<uint32_t>(z.bytes.size()));
  EXPECT_ERROR_HAS(bad_offset, "central directory");
  std::string bad_count = z.bytes;
  bad_count[z.eocd_offset + 10] = 100;
  bad_count[z.eocd_offset + 8] = 100;
  EXPECT_ERROR_HAS(bad_count, "entry count");
  std::string name_mismatch = z.bytes;
  name_mismatch[z.local_offsets[1] + 30] = 'b';
  EXPECT_ERROR_HAS(name_mismatch, "local header name");
}

TEST(PthHostile, EntryPastEndOfFile) {
  auto z = test::build_zip({{"a/data.pkl", "x"}, {"a/data/0", "yyyy"}});
  std::string far_header = z.bytes;
  test::patch32(far_header, z.central_offsets[1] + 42, 0x7fffffff);
  EXPECT_ERROR_HAS(far_header, "outside the file");
  std::string big = z.bytes;  // sizes in both headers say 1 GB
  test::patch32(big, z.central_offsets[1] + 20, 1u << 30);
  test::patch32(big, z.central_offsets[1] + 24, 1u << 30);
  test::patch32(big, z.local_offsets[1] + 18, 1u << 30);
  test::patch32(big, z.local_offsets[1] + 22, 1u << 30);
  EXPECT_ERROR_HAS(big, "runs past the end");
}

TEST(PthHostile, DuplicateNames) {
  auto z = test::build_zip({{"a/data.pkl", "x"}, {"a/data.pkl", "y"}});
  EXPECT_ERROR_HAS(z.bytes, "duplicate entry name 'a/data.pkl'");
}

TEST(PthHostile, OverlappingEntries) {
  // Entry 0 claims 200 bytes, swallowing entry 1's local header.
  auto z = test::build_zip({{"a/data.pkl", std::string(10, 'x')}, {"a/data/0", std::string(300, 'y')}}, {.align = 1});
  for (size_t at : {z.central_offsets[0] + 20, z.central_offsets[0] + 24, z.local_offsets[0] + 18, z.local_offsets[0] + 22})
    test::patch32(z.bytes, at, 200);
  EXPECT_ERROR_HAS(z.bytes, "overlap");
}

TEST(PthHostile, HugeDeflatedEntry) {
  auto z = test::build_zip({{"a/data.pkl", std::string(1000, 'x'), true}});
  test::patch32(z.bytes, z.central_offsets[0] + 24, 0xF0000000u);
  test::patch32(z.bytes, z.local_offsets[0] + 22, 0xF0000000u);
  EXPECT_ERROR_HAS(z.bytes, "uncompressed size");
}

TEST(PthHostile, CorruptDeflateData) {
  auto z = test::build_zip({{"a/data.pkl", std::string(1000, 'x'), true}});
  const size_t data = z.local_offsets[0] + 30 + 10;
  std::string b = z.bytes;
  // Find the data start from the local header's extra length, then scribble over it.
  const size_t extra = static_cast<uint8_t>(b[z.local_offsets[0] + 28]) | (static_cast<uint8_t>(b[z.local_offsets[0] + 29]) << 8);
  for (size_t i = 0; i < 4; ++i) b[data + extra + i] = static_cast<char>(0xff);
  EXPECT_NE(error_of(b), "<loaded>");
}

std::string pth_with_pickle(const std::string& pkl) {
  return test::pth_bytes(pkl, {{"0", test::raw(iota(16))}});
}

TEST(PthHostile, ForbiddenGlobals) {
  const std::pair<std::string, std::string> bad[] = {
      {"os", "system"}, {"builtins", "eval"}, {"subprocess", "Popen"}, {"posix", "system"},
      {"torch", "load"}, {"collections", "defaultdict"}};
  for (const auto& [mod, name] : bad) {
    PickleWriter w;
    w.proto(2).global(mod, name).mark().str("echo pwned").tuple().reduce().stop();
    const std::string m = error_of(pth_with_pickle(w.out));
    EXPECT_NE(m.find("'" + mod + "." + name + "'"), std::string::npos) << m;
    EXPECT_NE(m.find("byte offset 2"), std::string::npos) << m;
  }
  // The same through STACK_GLOBAL.
  PickleWriter w;
  w.proto(4).str("builtins").str("eval").op(0x93).stop();
  EXPECT_ERROR_HAS(pth_with_pickle(w.out), "builtins.eval");
}

TEST(PthHostile, ForbiddenGlobalInsideTensor) {
  PickleWriter w;
  w.proto(2).op('}').str("x").global("os", "system").str("ls").op(0x85).reduce().op('s').stop();
  EXPECT_ERROR_HAS(pth_with_pickle(w.out), "os.system");
}

TEST(PthHostile, UnsupportedOpcodes) {
  PickleWriter w;
  w.proto(2).op('}').op(0x81).stop();  // NEWOBJ
  EXPECT_ERROR_HAS(pth_with_pickle(w.out), "NEWOBJ (0x81) at byte offset 3");
  PickleWriter w2;
  w2.proto(2).op(0xff).stop();
  EXPECT_ERROR_HAS(pth_with_pickle(w2.out), "unknown opcode 0xff at byte offset 2");
  PickleWriter w3;
  w3.proto(2).op('i');  // INST: imports and calls
  w3.out += "os\nsystem\n";
  EXPECT_ERROR_HAS(pth_with_pickle(w3.out), "INST");
  PickleWriter w4;
  w4.proto(9).op('}').stop();
  EXPECT_ERROR_HAS(pth_with_pickle(w4.out), "protocol 9");
}

TEST(PthHostile, MalformedPickles) {
  EXPECT_ERROR_HAS(pth_with_pickle(""), "no STOP");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02}"), "no STOP");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02."), "underflow");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02X\xff\xff\xff\x7f"), "truncated string");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02h\x05."), "memo index 5");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02K\x01."), "not a state dict");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02}K\x01K\x02s."), "not a string");
  EXPECT_ERROR_HAS(pth_with_pickle(PickleWriter().proto(2).op('}').str("a").integer(2).op('s').stop().out),
                   "'a' is a int, not a tensor");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02]K\x01s."), "SETITEM");
  EXPECT_ERROR_HAS(pth_with_pickle("\x80\x02u."), "no MARK");
  EXPECT_ERROR_HAS(pth_with_pickle(std::string("\x80\x02") + std::string(300, '(') + "}."), "nested too deeply");
  // A list containing itself is harmless (the arena owns every object).
  EXPECT_ERROR_HAS(pth_with_pickle(PickleWriter().proto(2).op(']').op('q').op(0).op('h').op(0).op('a').stop().out),
                   "not a state dict");
}

TEST(PthHostile, StackAndObjectBounds) {
  std::string p = "\x80\x02";
  p.reserve(2u << 21);
  for (int i = 0; i < (1 << 21) + 10; ++i) p += 'N';
  EXPECT_ERROR_HAS(pth_with_pickle(p + "."), "pickle stack too deep");
  std::string q = "\x80\x02";
  for (int i = 0; i < (1 << 21) + 10; ++i) q += "N0";  // push None, pop it
  EXPECT_ERROR_HAS(pth_with_pickle(q + "."), "too many objects");
}

std::string tensor_pth(TensorSpec t, size_t storage_floats = 16) {
  t.name = "bad";
  if (t.key.empty()) t.key = "0";
  return test::pth_bytes(test::state_dict_pickle({t}), {{"0", test::raw(iota(storage_floats))}});
}

TEST(PthHostile, TensorBounds) {
  const int64_t big = int64_t{1} << 40;
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {big}, .stride = {1}}), "tensor 'bad'");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {big}, .stride = {0}}), "more elements");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = big, .shape = {big}, .stride = {1}}), "declares");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {4, 4}, .stride = {5, 1}}), "past the end");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .offset = 1, .shape = {16}, .stride = {1}}), "past the end");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .offset = 17, .shape = {0}, .stride = {1}}), "past the end");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {2}, .stride = {-1}}), "negative");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {-2}, .stride = {1}}), "negative");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {2, 2}, .stride = {1}}), "dims");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {1 << 20, 1 << 20, 1 << 20, 1 << 20}, .stride = {1, 1, 1, 1}}),
                   "more elements");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 16, .shape = {2, 2}, .stride = {int64_t{1} << 62, int64_t{1} << 62}}),
                   "tensor 'bad'");
  EXPECT_ERROR_HAS(tensor_pth({.storage_numel = 32, .shape = {32}, .stride = {1}}), "declares 32 elements");
  EXPECT_ERROR_HAS(tensor_pth({.key = "missing", .storage_numel = 4, .shape = {4}, .stride = {1}}), "storage");
  // Valid edge cases: empty tensor, broadcast view, scalar.
  for (TensorSpec ok : {TensorSpec{.storage_numel = 16, .offset = 16, .shape = {0, 5}, .stride = {5, 1}},
                        TensorSpec{.storage_numel = 16, .shape = {4, 4}, .stride = {0, 1}},
                        TensorSpec{.storage_numel = 16, .offset = 15, .shape = {}, .stride = {}}}) {
    const std::string b = tensor_pth(ok);
    auto r = load_pth_from_memory(kName, as_bytes(b));
    ASSERT_TRUE(r.ok()) << r.error().message;
    to_f32(r->at("bad"));
  }
}

TEST(PthHostile, MissingStorageKey) {
  TensorSpec t{.name = "w", .key = "nope", .storage_numel = 4, .shape = {4}, .stride = {1}};
  const std::string b = test::pth_bytes(test::state_dict_pickle({t}), {{"0", test::raw(iota(4))}});
  EXPECT_ERROR_HAS(b, "storage 'nope' missing");
}

TEST(PthHostile, NotACheckpoint) {
  auto z = test::build_zip({{"readme.txt", "hello"}});
  EXPECT_ERROR_HAS(z.bytes, "data.pkl");
  EXPECT_ERROR_HAS(std::string(100, '\0'), "end of central directory");
}

TEST(PthHostile, ErrorsNameTheFile) {
  PickleWriter w;
  w.proto(2).global("os", "system").stop();
  const std::string path = test::temp_dir() + "/evil.pth";
  const std::string b = pth_with_pickle(w.out);
  std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
  for (auto r : {load_pth(path), load_tensors(path)}) {
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("os.system"), std::string::npos) << r.error().message;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace wkv
