// `wkv bench --json` on a tiny model: one JSON object with the promised keys and sane values.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wkv_runner.hpp"

namespace wkv {
namespace {

using Result = test::CliResult;
Result wkv(const std::vector<std::string>& args) { return test::run_wkv(args); }

const std::string kTiny = test::testdata("models/rwkvcpp_tiny_7v0_834K/model.pth");

TEST(CliBench, JsonHasEveryKeyWithSaneValues) {
  Result r = wkv({"bench", "-m", kTiny, "--prompt", "16", "--gen", "8", "--threads", "2",
                  "--probe-mb", "32", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"prompt_tok_s", "gen_tok_s", "peak_rss_mb", "gen_ceiling_tok_s",
                        "prompt_ceiling_tok_s", "bandwidth_gb_s", "gemm_gflop_s",
                        "weight_bytes_per_token", "gen_fraction", "prompt_fraction"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    const double v = j.at(k).get<double>();
    EXPECT_TRUE(std::isfinite(v) && v > 0) << k << " = " << v;
  }
  EXPECT_EQ(j.at("threads").get<int>(), 2);
  EXPECT_EQ(j.at("dtype").get<std::string>(), "f32");
  EXPECT_EQ(j.at("prompt_tokens").get<int>(), 16);
  EXPECT_EQ(j.at("gen_tokens").get<int>(), 8);
  // f32 weights: every table's prompt products are fp32 (the opt-in modes are for bf16 and
  // quantized weights), or AMX's split bf16.
  const std::string math = j.at("prompt_math").get<std::string>();
  EXPECT_TRUE(math == "fp32" || math == "split-bf16") << math;
  // Tiny model (834K params, f32): ~3 MB of weights per token, far below any RSS limit.
  EXPECT_GT(j.at("weight_bytes_per_token").get<double>(), 1e6);
  EXPECT_LT(j.at("weight_bytes_per_token").get<double>(), 5e6);
  EXPECT_LT(j.at("peak_rss_mb").get<double>(), 4000);
  // The ceilings follow from the probes.
  EXPECT_NEAR(
      j.at("gen_ceiling_tok_s").get<double>(),
      j.at("bandwidth_gb_s").get<double>() * 1e9 / j.at("weight_bytes_per_token").get<double>(),
      1e-6 * j.at("gen_ceiling_tok_s").get<double>());
  EXPECT_NEAR(j.at("gen_fraction").get<double>(),
              j.at("gen_tok_s").get<double>() / j.at("gen_ceiling_tok_s").get<double>(), 1e-9);
}

TEST(CliBench, BadArgumentsExitWithUsage) {
  EXPECT_EQ(wkv({"bench", "--threads", "2"}).code, 2);  // no model
  EXPECT_EQ(wkv({"bench", "-m", kTiny, "--threads", "-1"}).code, 2);
  EXPECT_EQ(wkv({"bench", "-m", "/nonexistent.pth", "--prompt", "4", "--gen", "1"}).code, 1);
}

}  // namespace
}  // namespace wkv
