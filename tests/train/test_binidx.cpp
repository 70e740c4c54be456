// binidx (.bin + .idx): round trip, validation of damaged files, magic_prime, and `wkv data`
// feeding `wkv train`.
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.hpp"
#include "train/binidx.hpp"
#include "train/data.hpp"
#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

std::string read_all(const std::string& p) {
  std::stringstream ss;
  ss << std::ifstream(p, std::ios::binary).rdbuf();
  return ss.str();
}

TEST(TrainBinidx, RoundTripU16AndI32) {
  const std::string dir = wkv::test::temp_dir();
  const std::vector<std::vector<int32_t>> docs = {{5, 6, 7}, {}, {65535, 1}};
  ASSERT_TRUE(write_binidx(dir + "/a", docs));
  auto s = read_binidx(dir + "/a.bin");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s, (std::vector<int32_t>{5, 6, 7, 0, 0, 65535, 1, 0}));
  const std::string idx = read_all(dir + "/a.idx");
  EXPECT_EQ(idx.substr(0, 9), std::string("MMIDIDX\0\0", 9));
  EXPECT_EQ(int(uint8_t(idx[17])), 8);  // u16
  EXPECT_EQ(idx.size(), 9 + 8 + 1 + 8 + 8 + 3 * 4 + 3 * 8 + 4 * 8u);
  EXPECT_EQ(read_all(dir + "/a.bin").size(), 16u);
  ASSERT_TRUE(write_binidx(dir + "/b", {{70000, 2}}));
  auto t = read_binidx(dir + "/b");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(*t, (std::vector<int32_t>{70000, 2, 0}));
}

TEST(TrainBinidx, DamagedFilesAreErrorsNamingTheFile) {
  const std::string dir = wkv::test::temp_dir();
  ASSERT_TRUE(write_binidx(dir + "/c", {{1, 2, 3}}));
  std::string idx = read_all(dir + "/c.idx");
  // bad magic
  std::string bad = idx;
  bad[0] = 'X';
  std::ofstream(dir + "/d.idx", std::ios::binary) << bad;
  std::ofstream(dir + "/d.bin", std::ios::binary) << read_all(dir + "/c.bin");
  auto e = read_binidx(dir + "/d");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("d.idx: not a binidx index"), std::string::npos);
  // truncated index
  std::ofstream(dir + "/d.idx", std::ios::binary) << idx.substr(0, idx.size() - 3);
  e = read_binidx(dir + "/d");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("do not match the file size"), std::string::npos);
  // pointer past the data
  std::ofstream(dir + "/d.idx", std::ios::binary) << idx;
  std::ofstream(dir + "/d.bin", std::ios::binary) << "\x01";
  e = read_binidx(dir + "/d");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("lies outside"), std::string::npos) << e.error().message;
  EXPECT_FALSE(read_binidx(dir + "/missing"));
}

TEST(TrainBinidx, MagicPrime) {
  EXPECT_EQ(magic_prime(10000, 10), 983u);  // ≤ 999, ≡ 2 mod 3, prime, > 900
  EXPECT_EQ(magic_prime(5, 10), 0u);
}

TEST(TrainBinidx, DataCommandFeedsTrain) {
  const std::string dir = wkv::test::temp_dir();
  std::ofstream j(dir + "/docs.jsonl");
  for (int i = 0; i < 50; ++i) j << "{\"text\": \"document " << i << " says hello world\"}\n";
  j.close();
  CliResult r = run_wkv({"data", "-i", dir + "/docs.jsonl", "-o", dir + "/corpus", "--tokenizer",
                         "bytes", "--ctx", "16"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["documents"], 50);
  auto s = read_binidx(dir + "/corpus");
  ASSERT_TRUE(s);
  EXPECT_EQ(info["tokens"], s->size());
  EXPECT_EQ(info["magic_prime"], magic_prime(s->size(), 16));
  EXPECT_EQ((*s)[s->size() - 1], 0);
  const std::string init = dir + "/bi_init.safetensors";
  ASSERT_EQ(run_wkv({"init", "-o", init, "--n-layer", "1", "--n-embd", "16", "--head-size", "16",
                     "--vocab", "256"})
                .code,
            0);
  r = run_wkv({"train", "-m", init, "--data", dir + "/corpus.bin", "-o", dir + "/bi_out", "--steps",
               "3", "--warmup", "1", "--batch", "2", "--ctx", "16"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("step 3/3"), std::string::npos) << r.err;
  r = run_wkv({"data", "-i", dir + "/missing.txt", "-o", dir + "/x", "--tokenizer", "bytes"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(run_wkv({"data", "-i", dir + "/docs.jsonl"}).code, 2);
}

}  // namespace
}  // namespace wkv::train::test
