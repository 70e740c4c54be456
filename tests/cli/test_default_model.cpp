// The bundled model (models/kjv-L4-D128.safetensors) is what `wkv generate` and friends use
// without -m, it is a trained model (far below the loss of an untrained byte model on English
// it never saw verbatim), and a bad $WKV_MODEL is a clear error.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "wkv_runner.hpp"

namespace wkv {
namespace {

using test::run_wkv;

TEST(DefaultModel, GenerateWithoutAModelUsesTheBundledOne) {
  auto r = run_wkv({"generate", "-p", "And God said", "-n", "60", "--temperature", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("bundled model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("kjv-L4-D128.safetensors"), std::string::npos) << r.err;
  // Greedy continuation of "And God said": the model learned KJV English, so the output holds
  // ordinary words with spaces between them (an untrained byte model prints noise).
  ASSERT_GE(r.out.size(), 40u) << r.out;
  size_t letters_or_spaces = 0;
  for (char c : r.out)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ' ' || c == ',' || c == '.' ||
        c == '\n' || c == ';' || c == ':')
      ++letters_or_spaces;
  EXPECT_GT(double(letters_or_spaces) / double(r.out.size()), 0.95) << r.out;
  EXPECT_NE(r.out.find(' '), std::string::npos) << r.out;
  // The same again is the same text (greedy).
  auto again = run_wkv({"generate", "-p", "And God said", "-n", "60", "--temperature", "0"});
  EXPECT_EQ(again.out, r.out);
}

TEST(DefaultModel, ItIsTrainedOnEnglish) {
  // Not a verse of the training text: a plain sentence in its register.
  const std::string path = test::temp_dir() + "/default_model_text.txt";
  std::ofstream(path) << "And the people went out into the field, and they gathered the corn "
                         "unto the house of the LORD, and they gave thanks unto him that made "
                         "the heaven and the earth.\n";
  auto r = run_wkv({"perplexity", "--text", path, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const double nll = j.at("nll_per_token").get<double>();
  // An untrained byte model sits near ln 256 = 5.55 nats per byte; the bundled one far lower.
  EXPECT_LT(nll, 1.6) << r.out;
  EXPECT_GT(nll, 0.0) << r.out;
}

TEST(DefaultModel, ABadWkvModelVariableIsAClearError) {
  auto r = run_wkv({"generate", "-p", "x", "-n", "1"}, "", "WKV_MODEL=/nonexistent/model.pth");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("$WKV_MODEL names /nonexistent/model.pth"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace wkv
