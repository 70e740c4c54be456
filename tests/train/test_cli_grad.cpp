// `wkv grad` end to end: the official golden batch gives the official loss, logits and
// gradients; bad input is a one-line error with exit 1, bad arguments exit 2.
#include <algorithm>

#include "cli_util.hpp"
#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

using Result = CliResult;
Result wkv(const std::vector<std::string>& args) { return run_wkv(args); }

std::string golden(const std::string& f) { return wkv::test::testdata("train/" + f); }

// A batch file holding the golden tokens/targets, as int64 (as stored) or converted to int32.
std::string write_batch(const std::string& name, bool as_i32, bool drop_targets = false,
                        int32_t poison = -1) {
  auto ce = load_or_die(golden("grads_ce.safetensors"));
  TensorMap b;
  for (const char* n : {"tokens", "targets"}) {
    if (drop_targets && std::string(n) == "targets") continue;
    auto ids = tensor_ids(ce.at(n), n);
    EXPECT_TRUE(ids);
    if (poison >= 0) (*ids)[5] = poison;
    b[n] = as_i32 ? Tensor::from_i32(ce.at(n).shape, *ids) : ce.at(n);
  }
  const std::string path = wkv::test::temp_dir() + "/" + name;
  EXPECT_TRUE(save_safetensors(path, b));
  return path;
}

TEST(TrainCliGrad, GoldenBatchGivesOfficialLossLogitsAndGradients) {
  const auto ref_ce = load_or_die(golden("grads_ce.safetensors"));
  const auto ref_l2 = load_or_die(golden("grads_l2wrap.safetensors"));
  const auto model = load_or_die(golden("model.safetensors"));
  for (bool i32 : {false, true})
    for (bool l2wrap : {false, true}) {
      const std::string out = wkv::test::temp_dir() + "/grad_out.safetensors";
      std::vector<std::string> args = {"grad",
                                       "-m",
                                       golden("model.safetensors"),
                                       "--batch",
                                       write_batch("batch.safetensors", i32),
                                       "-o",
                                       out};
      if (l2wrap) args.push_back("--l2wrap");
      Result r = wkv(args);
      ASSERT_EQ(r.code, 0) << r.err;
      const auto o = load_or_die(out);
      const auto& ref = l2wrap ? ref_l2 : ref_ce;
      ASSERT_EQ(o.at("loss").shape, std::vector<int64_t>{1});
      EXPECT_EQ(o.at("loss").dtype, DType::f32);
      EXPECT_NEAR(get(o, "loss")[0], get(ref, "loss")[0], 1e-5);
      EXPECT_EQ(o.at("logits").shape, (std::vector<int64_t>{2, 64, 256}));
      EXPECT_LT(rel_l2(get(o, "logits"), get(ref_ce, "logits")), 1e-5);
      EXPECT_EQ(o.size(), model.size() + 2);  // every parameter, loss, logits
      for (const auto& [name, t] : model) {
        ASSERT_TRUE(o.count(name)) << name;
        EXPECT_EQ(o.at(name).shape, t.shape) << name;
        const auto g = get(o, name), gr = get(ref, "grad." + name);
        if (name == "blocks.0.att.v0" || name == "blocks.0.att.v1" || name == "blocks.0.att.v2")
          EXPECT_EQ(rel_l2(g, std::vector<float>(g.size(), 0.0f)), 0.0) << name;
        else
          EXPECT_LT(rel_l2(g, gr), 1e-4) << name;
      }
    }
}

TEST(TrainCliGrad, BadInputIsOneLineErrorExit1) {
  const std::string out = wkv::test::temp_dir() + "/grad_bad.safetensors";
  const std::string m = golden("model.safetensors");
  Result r =
      wkv({"grad", "-m", m, "--batch", write_batch("nt.safetensors", true, true), "-o", out});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("missing tensor 'targets'"), std::string::npos) << r.err;
  r = wkv(
      {"grad", "-m", m, "--batch", write_batch("oob.safetensors", true, false, 256), "-o", out});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("id 256 at position 5"), std::string::npos) << r.err;
  // a batch whose tokens are floats
  TensorMap fb{{"tokens", Tensor::from_f32({1, 2}, {1, 2})},
               {"targets", Tensor::from_f32({1, 2}, {1, 2})}};
  const std::string fpath = wkv::test::temp_dir() + "/float_batch.safetensors";
  ASSERT_TRUE(save_safetensors(fpath, fb));
  r = wkv({"grad", "-m", m, "--batch", fpath, "-o", out});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("expected int32 or int64"), std::string::npos) << r.err;
  // shapes that differ
  TensorMap sb{{"tokens", Tensor::from_i32({1, 2}, {1, 2})},
               {"targets", Tensor::from_i32({2, 1}, {1, 2})}};
  ASSERT_TRUE(save_safetensors(fpath, sb));
  r = wkv({"grad", "-m", m, "--batch", fpath, "-o", out});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("'targets' has shape [2, 1]"), std::string::npos) << r.err;
  // not an RWKV-7 model
  r = wkv({"grad", "-m", wkv::test::testdata("models/v6.0_random/model.pth"), "--batch",
           write_batch("ok.safetensors", true), "-o", out});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("not an RWKV-7 model"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(TrainCliGrad, BadArgumentsExit2) {
  EXPECT_EQ(wkv({"grad", "-m", golden("model.safetensors")}).code, 2);
  EXPECT_EQ(wkv({"grad", "--frobnicate"}).code, 2);
  EXPECT_EQ(wkv({"grad", "--help"}).code, 0);
}

}  // namespace
}  // namespace wkv::train::test
