// `wkv convert`, `wkv quantize` and `wkv perplexity` end to end: files written, logits kept,
// embedded vocabularies, quantization quality, exit codes and error lines.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "formats/formats.hpp"
#include "formats/gguf.hpp"
#include "wkv_runner.hpp"

namespace wkv {
namespace {

using Result = test::CliResult;
Result wkv(const std::vector<std::string>& args) { return test::run_wkv(args); }

const std::string kV7 = test::testdata("models/v7.0_random/model.pth");
const std::string kTiny = test::testdata("models/rwkvcpp_tiny_7v0_834K/model.pth");
const std::string kTiny5 = test::testdata("models/rwkvcpp_tiny_5v2_730K/model.pth");
std::string tmp(const std::string& name) { return test::temp_dir() + "/" + name; }

std::vector<float> logits_of(const std::string& model, const std::string& tokens) {
  const std::string o = tmp("gguf_logits.safetensors");
  Result r = wkv({"logits", "-m", model, "--tokens", tokens, "-o", o});
  EXPECT_EQ(r.code, 0) << r.err;
  auto t = load_safetensors(o);
  EXPECT_TRUE(t.ok());
  return t.ok() ? to_f32(t->at("logits")) : std::vector<float>{};
}

const char* kText =
    "in the morning the fishermen pulled their boats onto the sand, counted the nets, and argued "
    "about the weather for an hour. the old woman who sold bread at the corner watched them and "
    "laughed, because she had seen the same argument every day for forty years. then the wind "
    "turned, the clouds came down from the hills, and everyone went home to wait for the rain.\n";

std::string text_file() {
  const std::string p = tmp("gguf_text.txt");
  std::ofstream(p) << kText << kText;
  return p;
}

double perplexity(const std::string& model, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"perplexity", "-m", model, "--text", text_file(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  Result r = wkv(args);
  EXPECT_EQ(r.code, 0) << r.err;
  if (r.code != 0) return NAN;
  return nlohmann::json::parse(r.out)["perplexity"].get<double>();
}

TEST(CliGguf, HelpForEachCommand) {
  for (const char* c : {"convert", "quantize", "perplexity"}) {
    Result r = wkv({c, "--help"});
    EXPECT_EQ(r.code, 0) << c;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << c;
  }
}

TEST(CliGguf, ConvertToGgufKeepsLogits) {
  const std::string g = tmp("v7.gguf");
  Result r = wkv({"convert", "-m", kV7, "-o", g});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("-> " + g), std::string::npos) << r.err;
  auto f = read_gguf(g);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->find("general.architecture")->str, "rwkv7");
  const std::string toks = "1,7,300,511,0,42";
  const auto a = logits_of(kV7, toks), b = logits_of(g, toks);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);  // same f32 weights, same arithmetic
  // And back to safetensors, in bf16.
  const std::string s = tmp("v7_bf16.safetensors");
  ASSERT_EQ(wkv({"convert", "-m", g, "-o", s, "--dtype", "bf16"}).code, 0);
  Result info = wkv({"info", "-m", s});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["dtype"], "bf16");
  EXPECT_LT(test::max_abs_diff(logits_of(s, toks), a), 0.5f);
}

TEST(CliGguf, QuantizeWritesProgressAndKeepsQuality) {
  const double base = perplexity(kTiny);
  ASSERT_TRUE(std::isfinite(base));
  for (const char* type : {"q8_0", "q5_1", "q4_0", "q6_k", "q4_k"}) {
    const std::string q = tmp(std::string("tiny_") + type + ".gguf");
    Result r = wkv({"quantize", "-m", kTiny, "-o", q, "--type", type});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("blk.0.time_mix_key.weight"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(std::string("-> ") + type), std::string::npos);
    EXPECT_NE(r.err.find("output.weight"), std::string::npos);
    auto f = read_gguf(q);
    ASSERT_TRUE(f.ok()) << f.error().message;
    const DType want = *dtype_from_name(type);
    EXPECT_EQ(f->tensor("blk.3.channel_mix_value.weight")->dtype, want);  // rows of 256
    // Rows of 64 cannot hold a 256-value super-block: llama.cpp's fallback type, said so.
    EXPECT_EQ(f->tensor("blk.3.time_mix_key.weight")->dtype, quant_type_for_row(want, 64));
    if (dtype_info(want).block == 256) {
      EXPECT_NE(r.err.find("rows not a multiple of 256"), std::string::npos) << r.err;
    }
    EXPECT_EQ(f->tensor("output.weight")->dtype, DType::f32);      // head kept
    EXPECT_EQ(f->tensor("token_embd.weight")->dtype, DType::f32);  // embedding kept
    EXPECT_EQ(f->tensor("blk.3.time_mix_w1.weight")->dtype, DType::f32);
    const double p = perplexity(q);
    const double limit = std::string(type) == "q8_0" ? 0.01 : 0.05;
    EXPECT_LT(std::fabs(p / base - 1), limit) << type << ": " << p << " vs f32 " << base;
  }
  const std::string qh = tmp("tiny_head.gguf");
  ASSERT_EQ(wkv({"quantize", "-m", kTiny, "-o", qh, "--type", "q8_0", "--quantize-head"}).code, 0);
  auto f = read_gguf(qh);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tensor("output.weight")->dtype, DType::q8_0);
}

// llama.cpp's Q4_K_M / Q5_K_M as they come out for an RWKV model: k-quant matrices, a q6_k
// head, the Q4_K_M / Q5_K_M file type; a 256-wide random model so that every matrix takes
// k-quant blocks. The result loads and scores close to the f32 model.
TEST(CliGguf, QuantizeKQuantPresets) {
  const std::string src = tmp("w256.safetensors");
  ASSERT_EQ(wkv({"init", "--init", "random", "-o", src, "--n-layer", "2", "--n-embd", "256",
                 "--head-size", "64", "--vocab", "256", "--seed", "5"})
                .code,
            0);
  const double base = perplexity(src);
  ASSERT_TRUE(std::isfinite(base));
  for (auto [type, base_t, ftype] : {std::tuple{"q4_k_m", DType::q4_k, 15u},
                                     std::tuple{"Q5_K_M", DType::q5_k, 17u}}) {
    SCOPED_TRACE(type);
    const std::string q = tmp(std::string("w256_") + type + ".gguf");
    Result r = wkv({"quantize", "-m", src, "-o", q, "--type", type});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err.find("rows not a multiple"), std::string::npos) << r.err;
    auto f = read_gguf(q);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->tensor("output.weight")->dtype, DType::q6_k);
    EXPECT_EQ(f->tensor("blk.1.time_mix_key.weight")->dtype, base_t);
    EXPECT_EQ(f->tensor("blk.1.channel_mix_value.weight")->dtype, base_t);
    EXPECT_EQ(f->tensor("token_embd.weight")->dtype, DType::f32);
    EXPECT_EQ(f->find("general.file_type")->u, ftype);
    const double p = perplexity(q);
    EXPECT_LT(std::fabs(p / base - 1), 0.05) << p << " vs f32 " << base;
  }
  const std::string kept = tmp("w256_keep.gguf");
  ASSERT_EQ(wkv({"quantize", "-m", src, "-o", kept, "--type", "q4_k_m", "--keep-head"}).code, 0);
  auto f = read_gguf(kept);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tensor("output.weight")->dtype, DType::f32);
}

TEST(CliGguf, QuantizeOwnArchForRwkv5) {
  const std::string q = tmp("tiny5.gguf");
  Result r = wkv({"quantize", "-m", kTiny5, "-o", q, "--type", "q8_0"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto f = read_gguf(q);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->find("general.architecture")->str, "wkv-rwkv5");
  EXPECT_EQ(f->tensor("blocks.0.att.key.weight")->dtype, DType::q8_0);
  const double base = perplexity(kTiny5), p = perplexity(q);
  EXPECT_LT(std::fabs(p / base - 1), 0.01) << p << " vs " << base;
}

TEST(CliGguf, EmbeddedWorldVocabularyNeedsNoVocabOption) {
  const std::string vocab = test::shared_dir() + "/vocab/rwkv_vocab_v20230424.txt";
  const std::string src = tmp("world.safetensors"), g = tmp("world.gguf");
  ASSERT_EQ(wkv({"init", "--init", "random", "-o", src, "--n-layer", "1", "--n-embd", "64", "--head-size", "64",
                 "--vocab", "65536", "--seed", "3"})
                .code,
            0);
  Result c = wkv({"convert", "-m", src, "-o", g, "--vocab", vocab});
  ASSERT_EQ(c.code, 0) << c.err;
  auto f = read_gguf(g);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->find("tokenizer.ggml.model")->str, "rwkv");
  const GgufValue* toks = f->find("tokenizer.ggml.tokens");
  ASSERT_NE(toks, nullptr);
  ASSERT_EQ(toks->strs.size(), 65536u);
  EXPECT_EQ(toks->strs[0], "<s>");
  EXPECT_EQ(toks->strs[11], "\\n");
  EXPECT_EQ(toks->strs[261], "\\n\\n");
  EXPECT_EQ(toks->strs[65535], "[PAD65535]");
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->elem, GgufType::i32);
  EXPECT_EQ(f->find("tokenizer.ggml.eot_token_id")->u, 261u);
  const std::vector<std::string> gen{
      "-p",          "Hello, world: \xe4\xbd\xa0\xe5\xa5\xbd", "-n", "12", "--temperature", "0",
      "--ignore-eos"};
  std::vector<std::string> a{"generate", "-m", src, "--vocab", vocab}, b{"generate", "-m", g};
  a.insert(a.end(), gen.begin(), gen.end());
  b.insert(b.end(), gen.begin(), gen.end());
  Result ra = wkv(a), rb = wkv(b);
  ASSERT_EQ(ra.code, 0) << ra.err;
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_EQ(ra.out, rb.out);
  EXPECT_NE(rb.err.find("prompt"), std::string::npos);
  // Without --vocab the safetensors source cannot tell its tokenizer.
  std::vector<std::string> c2{"generate", "-m", src};
  c2.insert(c2.end(), gen.begin(), gen.end());
  EXPECT_EQ(wkv(c2).code, 1);
}

TEST(CliGguf, PerplexityJsonAndModes) {
  Result r = wkv({"perplexity", "-m", kTiny, "--text", text_file(), "--json", "--ctx", "64"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const size_t n = 2 * std::string(kText).size();
  EXPECT_EQ(j["tokens"], n);
  EXPECT_EQ(j["scored"], n - 1);
  EXPECT_EQ(j["state"], "carried");
  EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
  const double carried = j["perplexity"].get<double>();
  EXPECT_GT(carried, 1.0);
  EXPECT_LT(carried, 256.0);  // better than uniform over bytes
  // The window size does not change a carried-state perplexity (beyond float rounding).
  EXPECT_NEAR(perplexity(kTiny, {"--ctx", "1000"}), carried, carried * 1e-4);
  // Reset per window: fewer scored tokens, less context, higher perplexity.
  Result rr =
      wkv({"perplexity", "-m", kTiny, "--text", text_file(), "--json", "--ctx", "16", "--reset"});
  ASSERT_EQ(rr.code, 0) << rr.err;
  auto jr = nlohmann::json::parse(rr.out);
  EXPECT_LT(jr["scored"].get<size_t>(), n - 1);
  EXPECT_GT(jr["perplexity"].get<double>(), carried);
  Result plain = wkv({"perplexity", "-m", kTiny, "--text", text_file()});
  ASSERT_EQ(plain.code, 0);
  EXPECT_EQ(plain.out.rfind("perplexity ", 0), 0u) << plain.out;
}

// Over the manifest's sentence, the perplexity equals the one computed from the official
// reference logits of that case (expected.safetensors).
TEST(CliGguf, PerplexityMatchesReferenceLogits) {
  const std::string dir = test::testdata("models/rwkvcpp_tiny_7v0_834K");
  std::ifstream mf(dir + "/manifest.json");
  const auto manifest = nlohmann::json::parse(mf);
  const std::string text = tmp("manifest.txt");
  std::ofstream(text) << manifest["text"].get<std::string>();
  auto exp = load_safetensors(dir + "/expected.safetensors");
  ASSERT_TRUE(exp.ok());
  const auto logits = to_f32(exp->at("logits"));
  const auto tokens = to_f32(exp->at("tokens"));
  const size_t V = 256;
  double nll = 0;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const float* row = logits.data() + t * V;
    double mx = row[0], sum = 0;
    for (size_t v = 1; v < V; ++v) mx = std::max<double>(mx, row[v]);
    for (size_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
    nll += mx + std::log(sum) - row[static_cast<size_t>(tokens[t + 1])];
  }
  const double want = std::exp(nll / static_cast<double>(tokens.size() - 1));
  Result r = wkv({"perplexity", "-m", kTiny, "--text", text, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens"].get<size_t>(), tokens.size());
  EXPECT_NEAR(j["perplexity"].get<double>(), want, want * 1e-4);
}

TEST(CliGguf, BadArgumentsAndBadFiles) {
  EXPECT_EQ(wkv({"perplexity", "-m", kTiny}).code, 2);  // --text missing
  EXPECT_EQ(wkv({"quantize", "-m", kTiny, "-o", tmp("x.gguf"), "--type", "iq2_xxs"}).code, 2);
  EXPECT_EQ(wkv({"quantize", "-m", kTiny, "-o", tmp("x.gguf"), "--type", "q8_k"}).code, 2);
  EXPECT_EQ(wkv({"quantize", "-m", kTiny, "-o", tmp("x.bin"), "--type", "q8_0"}).code, 2);
  EXPECT_EQ(wkv({"convert", "-m", kTiny, "-o", tmp("x.txt")}).code, 2);
  EXPECT_EQ(wkv({"convert", "-m", kTiny, "-o", tmp("x.gguf"), "--dtype", "q8_0"}).code, 2);
  Result nofile = wkv({"perplexity", "-m", kTiny, "--text", tmp("does_not_exist.txt")});
  EXPECT_EQ(nofile.code, 1);
  EXPECT_NE(nofile.err.find("does_not_exist.txt"), std::string::npos);
  // A truncated GGUF: error line naming the file, exit 1, no output file left behind.
  const std::string g = tmp("trunc_src.gguf"), bad = tmp("trunc.gguf");
  ASSERT_EQ(wkv({"convert", "-m", kTiny, "-o", g}).code, 0);
  std::string bytes;
  {
    std::stringstream ss;
    ss << std::ifstream(g, std::ios::binary).rdbuf();
    bytes = ss.str();
  }
  std::ofstream(bad, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  Result r = wkv({"info", "-m", bad});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("wkv: error: " + bad + ": gguf:"), std::string::npos) << r.err;
  const std::string out = tmp("never.gguf");
  std::remove(out.c_str());
  EXPECT_EQ(wkv({"quantize", "-m", bad, "-o", out, "--type", "q8_0"}).code, 1);
  EXPECT_FALSE(std::ifstream(out).good());
}

}  // namespace
}  // namespace wkv
