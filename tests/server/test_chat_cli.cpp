// `wkv chat` driven through a pipe: replies equal the in-process ChatSession's, and /save,
// /load, /retry, /reset and errors behave.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "formats/formats.hpp"
#include "runtime/chat_session.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

std::string run_chat(const std::string& input, int* status) {
  const std::string dir = test::temp_dir();
  const std::string in = dir + "/chat_in.txt";
  std::ofstream(in) << input;
  std::string cmd = std::string(WKV_EXE) + " chat -m " +
                    test::testdata("models/rwkvcpp_tiny_7v0_834K/model.pth") +
                    " --temperature 0 -n 20 < " + in + " 2>" + dir + "/chat_err.txt";
  FILE* f = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = pclose(f);
  return out;
}

TEST(ChatCli, PipedTurnsSaveLoadRetryMatchSession) {
  auto t = load_tensors(test::testdata("models/rwkvcpp_tiny_7v0_834K/model.pth"));
  ASSERT_TRUE(bool(t));
  auto m = load_model(std::move(*t), "tiny");
  ASSERT_TRUE(bool(m));
  auto tok = make_byte_tokenizer();
  SamplerConfig sc;  // wkv chat's defaults (the G1 chat reference's penalties), greedy
  sc.temperature = 0;
  sc.presence_penalty = 0.5f;
  sc.frequency_penalty = 0.5f;
  sc.penalty_decay = 0.996f;
  ChatSession chat(**m, *tok, sc, 20);
  auto quiet = [](const std::string&) {};
  std::string r1 = *chat.say("Hello", quiet);
  std::string r2 = *chat.say("How are you?", quiet);
  ChatSession other(**m, *tok, sc, 20);
  std::string r3 = *other.say("Bye", quiet);

  const std::string file = test::temp_dir() + "/chat_state.safetensors";
  std::filesystem::remove(file);
  int status = 0;
  std::string out = run_chat("Hello\n\n/save " + file + "\nHow are you?\n/load " + file +
                                 "\nHow are you?\n/retry\n/reset\nBye\n",
                             &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out, r1 + "\n" + r2 + "\n" + r2 + "\n" + r2 + "\n" + r3 + "\n");
  std::map<std::string, std::string> meta;
  auto saved = load_safetensors(file, &meta);
  ASSERT_TRUE(bool(saved));
  EXPECT_EQ(meta["kind"], "wkv-chat");
  EXPECT_EQ(meta["transcript"].rfind("User: Hello\n\nAssistant:", 0), 0u);

  // Errors: a bad command or a missing file is reported, the chat goes on, the exit is 1.
  out = run_chat("/frobnicate\n/load /nonexistent/x.safetensors\n/retry\nHello\n", &status);
  EXPECT_NE(status, 0);
  EXPECT_EQ(out, r1 + "\n");
  std::ifstream err(test::temp_dir() + "/chat_err.txt");
  std::string e((std::istreambuf_iterator<char>(err)), {});
  EXPECT_NE(e.find("unknown command /frobnicate"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/x.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("nothing to retry"), std::string::npos) << e;
}

}  // namespace
}  // namespace wkv
