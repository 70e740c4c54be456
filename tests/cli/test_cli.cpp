// The `wkv` command end to end: exact argument forms, outputs, exit codes and error lines.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/formats.hpp"
#include "wkv_runner.hpp"

namespace wkv {
namespace {

using Result = test::CliResult;
Result wkv(const std::vector<std::string>& args, const std::string& stdin_text = "",
           const std::string& env = "") {
  return test::run_wkv(args, stdin_text, env);
}
std::string quote(const std::string& s) { return test::shell_quote(s); }

const std::string kV7 = test::testdata("models/v7.0_random/model.pth");
const std::string kTiny = test::testdata("models/rwkvcpp_tiny_7v0_834K/model.pth");
std::string vocab() { return test::shared_dir() + "/vocab/rwkv_vocab_v20230424.txt"; }

TEST(Cli, NoCommandOrUnknownCommandIsUsageError) {
  EXPECT_EQ(wkv({}).code, 2);
  Result r = wkv({"frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos);
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* c : {"info", "tokenize", "detokenize", "logits", "generate", "init"}) {
    Result r = wkv({c, "--help"});
    EXPECT_EQ(r.code, 0) << c;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << c << ": " << r.out;
  }
}

TEST(Cli, MissingRequiredArgumentIsOneLineErrorAndUsage) {
  Result r = wkv({"convert"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("error"), std::string::npos);
  EXPECT_NE(r.err.find("--model"), std::string::npos);
  EXPECT_NE(r.err.find("Usage"), std::string::npos);
  Result bad = wkv({"logits", "-m", kV7, "--tokens", "1,x,3", "-o", "/tmp/x.safetensors"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("'x'"), std::string::npos) << bad.err;
}

TEST(Cli, InfoPrintsOneJsonObject) {
  Result r = wkv({"info", "-m", kV7});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["version"], "7.0");
  EXPECT_EQ(j["n_layer"], 3);
  EXPECT_EQ(j["n_embd"], 128);
  EXPECT_EQ(j["head_size"], 64);
  EXPECT_EQ(j["n_head"], 2);
  EXPECT_EQ(j["vocab_size"], 512);
  EXPECT_EQ(j["ffn_size"], 512);
  EXPECT_EQ(j["dtype"], "f32");
  EXPECT_GT(j["params"].get<int64_t>(), 0);
}

TEST(Cli, InfoOnMissingOrBadFileFailsWithPath) {
  Result r = wkv({"info", "-m", "/nonexistent/model.pth"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent/model.pth"), std::string::npos);
  const std::string junk = test::temp_dir() + "/junk.pth";
  std::ofstream(junk) << "this is not a checkpoint";
  Result j = wkv({"info", "-m", junk});
  EXPECT_EQ(j.code, 1);
  EXPECT_NE(j.err.find("junk.pth"), std::string::npos) << j.err;
}

std::vector<float> read_logits(const std::string& path) {
  auto t = load_safetensors(path);
  EXPECT_TRUE(t.ok());
  return to_f32(t->at("logits"));
}

TEST(Cli, LogitsMatchOfficialInBothModesAndStateFilesContinue) {
  auto exp = load_safetensors(test::testdata("models/v7.0_random/expected.safetensors"));
  ASSERT_TRUE(exp.ok());
  auto toks = to_f32(exp->at("tokens"));
  auto want = to_f32(exp->at("logits"));
  std::string all, first, rest;
  for (size_t i = 0; i < 20; ++i) {
    std::string s = std::to_string(static_cast<int>(toks[i]));
    all += (i ? "," : "") + s;
    if (i < 8)
      first += (i ? "," : "") + s;
    else
      rest += (rest.empty() ? "" : ",") + s;
  }
  const std::string d = test::temp_dir();
  for (const char* mode : {"seq", "rnn"}) {
    Result r =
        wkv({"logits", "-m", kV7, "--tokens", all, "--mode", mode, "-o", d + "/l.safetensors"});
    ASSERT_EQ(r.code, 0) << r.err;
    auto got = read_logits(d + "/l.safetensors");
    ASSERT_EQ(got.size(), 20u * 512);
    EXPECT_LE(test::max_abs_diff(got, std::vector<float>(want.begin(), want.begin() + 20 * 512)),
              2e-4f);
  }
  // Split the same tokens across two calls through a state file.
  ASSERT_EQ(wkv({"logits", "-m", kV7, "--tokens", first, "--state-out", d + "/s.safetensors", "-o",
                 d + "/a.safetensors"})
                .code,
            0);
  Result r2 = wkv({"logits", "-m", kV7, "--tokens", rest, "--state-in", d + "/s.safetensors", "-o",
                   d + "/b.safetensors"});
  ASSERT_EQ(r2.code, 0) << r2.err;
  auto got = read_logits(d + "/b.safetensors");
  EXPECT_LE(
      test::max_abs_diff(got, std::vector<float>(want.begin() + 8 * 512, want.begin() + 20 * 512)),
      2e-4f);
}

TEST(Cli, LogitsRejectsTokenOutsideVocab) {
  Result r =
      wkv({"logits", "-m", kV7, "--tokens", "1,512", "-o", test::temp_dir() + "/x.safetensors"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("512"), std::string::npos);
}

TEST(Cli, TokenizeAndDetokenizeWorld) {
  Result t = wkv({"tokenize", "--vocab", vocab(), "--text", "Hello world"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(nlohmann::json::parse(t.out), nlohmann::json({33155, 40213}));
  Result s = wkv({"tokenize", "--vocab", vocab()}, "Hello world");
  EXPECT_EQ(nlohmann::json::parse(s.out), nlohmann::json({33155, 40213}));
  Result d = wkv({"detokenize", "--vocab", vocab(), "--ids", "33155,40213"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out, "Hello world");
  Result b = wkv({"tokenize", "--tokenizer", "bytes", "--text", "AB"});
  EXPECT_EQ(nlohmann::json::parse(b.out), nlohmann::json({65, 66}));
}

TEST(Cli, TokenizeWithNeox20bTokenizerJson) {
  const std::string json = test::shared_dir() + "/vocab/20B_tokenizer.json";
  Result t = wkv({"tokenize", "--tokenizer-json", json, "--text", "Hello world"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(nlohmann::json::parse(t.out), nlohmann::json({12092, 1533}));
  Result d = wkv({"detokenize", "--tokenizer-json", json, "--ids", "12092,1533"});
  EXPECT_EQ(d.out, "Hello world");
}

TEST(Cli, OtherGenerationsGenerateFromTheirCheckpoints) {
  for (const char* c : {"v4_random", "v5.2_random", "v6.0_random"}) {
    // Vocabulary 512 says nothing about the tokenizer: it must be named, else a clear error.
    const std::string m = test::testdata(std::string("models/") + c + "/model.pth");
    Result none = wkv({"generate", "-m", m, "-p", "ab", "-n", "3"});
    EXPECT_EQ(none.code, 1) << c;
    EXPECT_NE(none.err.find("512"), std::string::npos) << none.err;
    Result r = wkv({"generate", "-m", m, "--tokenizer", "bytes", "-p", "ab", "-n", "8",
                    "--ignore-eos", "--temperature", "0"});
    EXPECT_EQ(r.code, 0) << c << ": " << r.err;
    EXPECT_NE(r.err.find("generated 8 tokens"), std::string::npos) << c << ": " << r.err;
  }
}

TEST(Cli, MissingVocabularySaysWhereToGetOne) {
  Result r = wkv({"tokenize", "--vocab", "/nonexistent/vocab.txt", "--text", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent/vocab.txt"), std::string::npos);
  EXPECT_NE(r.err.find("rwkv_vocab_v20230424.txt"), std::string::npos) << r.err;
}

TEST(Cli, GenerateGreedyIsDeterministicAndSeedReproduces) {
  Result a =
      wkv({"generate", "-m", kTiny, "-p", "In the beginning", "-n", "40", "--temperature", "0"});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_GT(a.out.size(), 10u);
  EXPECT_NE(a.err.find("tok/s"), std::string::npos);
  Result b =
      wkv({"generate", "-m", kTiny, "-p", "In the beginning", "-n", "40", "--temperature", "0"});
  EXPECT_EQ(a.out, b.out);
  Result s1 = wkv({"generate", "-m", kTiny, "-p", "The", "-n", "60", "--seed", "42"});
  Result s2 = wkv({"generate", "-m", kTiny, "-p", "The", "-n", "60", "--seed", "42"});
  Result s3 = wkv({"generate", "-m", kTiny, "-p", "The", "-n", "60", "--seed", "43"});
  ASSERT_EQ(s1.code, 0) << s1.err;
  EXPECT_EQ(s1.out, s2.out);
  EXPECT_NE(s1.out, s3.out);
}

TEST(Cli, GenerateStopsBeforeStopString) {
  Result a =
      wkv({"generate", "-m", kTiny, "-p", "In the beginning", "-n", "200", "--temperature", "0"});
  ASSERT_EQ(a.code, 0);
  ASSERT_GT(a.out.size(), 12u);
  const std::string stop = a.out.substr(6, 3);  // something the greedy text surely contains
  Result b = wkv({"generate", "-m", kTiny, "-p", "In the beginning", "-n", "200", "--temperature",
                  "0", "--stop", stop});
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.out, a.out.substr(0, a.out.find(stop)) + "\n");
  EXPECT_NE(b.err.find("stop string"), std::string::npos);
}

TEST(Cli, IgnoreEosGeneratesExactlyNTokens) {
  Result r = wkv({"generate", "-m", kTiny, "-p", "x", "-n", "300", "--ignore-eos", "--seed", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("generated 300 tokens"), std::string::npos) << r.err;
}

TEST(Cli, BadSamplingValuesAreUsageErrors) {
  Result r = wkv({"generate", "-m", kTiny, "-p", "x", "--top-p", "1.5"});
  EXPECT_EQ(r.code, 2);
  Result n = wkv({"generate", "-m", kTiny, "-p", "x", "--presence-penalty", "nan"});
  EXPECT_EQ(n.code, 2) << n.err;
}

TEST(Cli, WorldTokenizerIsChosenFromTheModelAndFoundInVocabDir) {
  const std::string p = test::temp_dir() + "/world.safetensors";
  ASSERT_EQ(wkv({"init", "--init", "random", "-o", p, "--n-layer", "1", "--n-embd", "32", "--head-size", "32",
                 "--vocab", "65536"})
                .code,
            0);
  Result missing =
      wkv({"generate", "-m", p, "-p", "Hello", "-n", "2"}, "", "WKV_VOCAB_DIR=/nonexistent");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("rwkv_vocab_v20230424.txt"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("/nonexistent/"), std::string::npos) << missing.err;
  Result found = wkv({"generate", "-m", p, "-p", "Hello", "-n", "4", "--seed", "1", "--ignore-eos"},
                     "", "WKV_VOCAB_DIR=" + quote(test::shared_dir() + "/vocab"));
  EXPECT_EQ(found.code, 0) << found.err;
  EXPECT_NE(found.err.find("prompt 1 tokens"), std::string::npos)
      << found.err;  // "Hello" is one World token
}

TEST(Cli, ConflictingTokenizerOptionsAreRejected) {
  Result r = wkv({"tokenize", "--vocab", vocab(), "--tokenizer", "bytes", "--text", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("exclude"), std::string::npos) << r.err;
}

TEST(Cli, InitWritesALoadableRandomModel) {
  const std::string p = test::temp_dir() + "/rand.safetensors";
  Result r = wkv(
      {"init", "--init", "random", "-o", p, "--n-layer", "2", "--n-embd", "64", "--head-size", "32", "--vocab", "300"});
  ASSERT_EQ(r.code, 0) << r.err;
  Result i = wkv({"info", "-m", p});
  ASSERT_EQ(i.code, 0) << i.err;
  auto j = nlohmann::json::parse(i.out);
  EXPECT_EQ(j["n_layer"], 2);
  EXPECT_EQ(j["n_head"], 2);
  EXPECT_EQ(j["vocab_size"], 300);
}

// A tokenizer with ids the model lacks would index past the embedding: every command that
// pairs a model with a tokenizer refuses it up front, naming the mismatch.
TEST(Cli, TokenizerLargerThanModelVocabularyIsRefused) {
  const std::string text = test::temp_dir() + "/ppl.txt";
  std::ofstream(text) << "Hello world, hello world.";
  const std::vector<std::vector<std::string>> cmds = {
      {"generate", "-m", kTiny, "--vocab", vocab(), "-p", "Hi", "-n", "1"},
      {"chat", "-m", kTiny, "--vocab", vocab()},
      {"perplexity", "-m", kTiny, "--vocab", vocab(), "--text", text},
  };
  for (const auto& c : cmds) {
    Result r = wkv(c, "Hello\n");
    EXPECT_EQ(r.code, 1) << c[0] << ": " << r.err;
    EXPECT_NE(r.err.find("ids but the model only 256"), std::string::npos) << c[0] << ": " << r.err;
  }
}

}  // namespace
}  // namespace wkv
