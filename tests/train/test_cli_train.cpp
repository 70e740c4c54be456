// `wkv train` end to end: a short run from a `wkv init` model lowers the validation loss and
// writes a CSV log and checkpoints; the .pth has torch.save's zip/pickle layout, holds exactly
// the trained parameters, and `wkv logits` on it matches the training forward.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli_util.hpp"
#include "formats/zip.hpp"
#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

struct TrainRun {
  std::string dir, init, data;
  std::vector<std::string> args;  // the training options after -m, --data and -o
  CliResult train;
};

// One short training run shared by the tests below.
const TrainRun& short_run() {
  static const TrainRun r = [] {
    TrainRun x;
    x.dir = wkv::test::temp_dir() + "/train_cli";
    const std::string init = x.init = wkv::test::temp_dir() + "/train_init.safetensors";
    CliResult i = run_wkv({"init", "-o", init, "--n-layer", "2", "--n-embd", "32", "--head-size",
                           "16", "--vocab", "256", "--seed", "3"});
    EXPECT_EQ(i.code, 0) << i.err;
    std::string text;
    const char* words[] = {"alpha", "beta", "gamma", "delta"};
    for (int d = 0; d < 60; ++d)
      for (int k = 0; k < 12; ++k) text += std::string(words[(d + k) % 4]) + " and ";
    const std::string data = x.data = wkv::test::temp_dir() + "/train_corpus.txt";
    std::ofstream(data) << text;
    x.args = {"--steps",    "30",   "--batch",      "4", "--ctx",       "32", "--lr-init",   "3e-3",
              "--lr-final", "3e-4", "--warmup",     "3", "--val-every", "15", "--log-every", "5",
              "--seed",     "2",    "--save-every", "15"};
    std::vector<std::string> a = {"train", "-m", init, "--data", data, "-o", x.dir};
    a.insert(a.end(), x.args.begin(), x.args.end());
    x.train = run_wkv(a);
    return x;
  }();
  return r;
}

TEST(TrainCli, ShortRunLowersValidationLossAndLogsProgress) {
  const TrainRun& r = short_run();
  ASSERT_EQ(r.train.code, 0) << r.train.err;
  EXPECT_NE(r.train.err.find("step 30/30  loss"), std::string::npos) << r.train.err;
  EXPECT_NE(r.train.err.find("tok/s  ETA 0:00:00"), std::string::npos) << r.train.err;
  std::ifstream f(r.dir + "/train_log.csv");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "step,tokens,loss,val_loss,lr,tokens_per_s,elapsed_s");
  std::vector<double> val;
  int rows = 0;
  while (std::getline(f, line)) {
    auto cols = split(line, ',');
    ASSERT_EQ(cols.size(), 7u) << line;
    ++rows;
    if (!cols[3].empty()) val.push_back(std::stod(cols[3]));
  }
  EXPECT_EQ(rows, 31);
  ASSERT_EQ(val.size(), 3u);  // steps 0, 15, 30
  std::printf("[figures] wkv train: val loss %.3f -> %.3f -> %.3f\n", val[0], val[1], val[2]);
  EXPECT_LT(val[2], val[0] - 1.0);
}

TEST(TrainCli, WritesTheLossCurveBesideTheCheckpoints) {
  const TrainRun& r = short_run();
  ASSERT_EQ(r.train.code, 0) << r.train.err;
  std::ifstream f(r.dir + "/loss.svg");
  ASSERT_TRUE(f) << "no loss.svg";
  const std::string svg((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  // 30 training points and 3 validation points (steps 0, 15, 30).
  const size_t p = svg.find("<polyline class=\"train\""), q = svg.find("points=\"", p) + 8;
  ASSERT_NE(p, std::string::npos);
  size_t points = 0;
  for (size_t i = q; svg[i] != '"'; ++i) points += svg[i] == ',';
  EXPECT_EQ(points, 30u);
  size_t dots = 0;
  for (size_t i = svg.find("<circle"); i != std::string::npos; i = svg.find("<circle", i + 1)) ++dots;
  EXPECT_EQ(dots, 3u);
  // `wkv plot` redraws the same chart from the log.
  const std::string out = wkv::test::temp_dir() + "/replot.svg";
  CliResult pr = run_wkv({"plot", "--log", r.dir + "/train_log.csv", "-o", out, "--title",
                          "wkv train " + r.dir});
  ASSERT_EQ(pr.code, 0) << pr.err;
  std::ifstream g(out);
  const std::string svg2((std::istreambuf_iterator<char>(g)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg2, svg);
  CliResult bad = run_wkv({"plot", "--log", r.dir + "/nope.csv", "-o", out});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("nope.csv"), std::string::npos) << bad.err;
}

TEST(TrainCli, PthCheckpointHasTorchSaveLayout) {
  const TrainRun& r = short_run();
  ASSERT_EQ(r.train.code, 0) << r.train.err;
  auto mf = MappedFile::open(r.dir + "/rwkv-final.pth");
  ASSERT_TRUE(mf) << mf.error().message;
  auto z = zip::Archive::parse("rwkv-final.pth", (*mf)->bytes());
  ASSERT_TRUE(z) << z.error().message;
  const auto& entries = z->entries();
  ASSERT_GE(entries.size(), 4u);
  EXPECT_EQ(entries.front().name, "archive/data.pkl");
  EXPECT_EQ(entries[1].name, "archive/byteorder");
  EXPECT_EQ(entries.back().name, "archive/version");
  for (size_t i = 2; i + 1 < entries.size(); ++i) {
    EXPECT_EQ(entries[i].name, "archive/data/" + std::to_string(i - 2));
    EXPECT_EQ(entries[i].method, 0);
    EXPECT_EQ(entries[i].data_offset % 64, 0u) << entries[i].name;
    auto d = z->read(entries[i], 1 << 30, /*verify_crc=*/true);
    ASSERT_TRUE(d) << d.error().message;
  }
  auto pkl = z->read(entries.front(), 1 << 20, true);
  ASSERT_TRUE(pkl);
  const std::string p(reinterpret_cast<const char*>(pkl->bytes.data()), pkl->bytes.size());
  EXPECT_EQ(p.substr(0, 2), std::string("\x80\x02"));
  EXPECT_EQ(p.substr(2, 25), "ccollections\nOrderedDict\n");
  EXPECT_NE(p.find("ctorch._utils\n_rebuild_tensor_v2\n"), std::string::npos);
  EXPECT_NE(p.find("ctorch\nFloatStorage\n"), std::string::npos);
  EXPECT_EQ(p.back(), '.');
  // The first key is the official first parameter.
  EXPECT_NE(p.find("emb.weight"), std::string::npos);
  EXPECT_LT(p.find("emb.weight"), p.find("blocks.0.ln1.weight"));
}

TEST(TrainCli, CheckpointLoadsBackWithIdenticalParametersAndLogits) {
  const TrainRun& r = short_run();
  ASSERT_EQ(r.train.code, 0) << r.train.err;
  auto pth = load_tensors(r.dir + "/rwkv-final.pth");
  ASSERT_TRUE(pth) << pth.error().message;
  auto st = load_safetensors(r.dir + "/rwkv-final.safetensors");
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_EQ(pth->size(), st->size());
  for (const auto& [name, t] : *st) {
    ASSERT_TRUE(pth->count(name)) << name;
    EXPECT_EQ(pth->at(name).shape, t.shape) << name;
    EXPECT_EQ(to_f32(pth->at(name)), to_f32(t)) << name;
  }
  auto p = params_from_tensors<float>(*pth, "rwkv-final.pth");
  ASSERT_TRUE(p) << p.error().message;
  const std::vector<int32_t> ids = {'a', 'l', 'p', 'h', 'a', ' ', 'a', 'n', 'd', ' ', 'b'};
  std::vector<float> train_logits(ids.size() * 256);
  Rwkv7Trainer<float> tr;
  tr.forward(*p, ids.data(), 1, ids.size(), nullptr, train_logits.data());
  std::string list;
  for (int32_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  std::vector<float> prev;
  for (const char* file : {"rwkv-final.pth", "rwkv-final.safetensors"}) {
    const std::string out = wkv::test::temp_dir() + "/ckpt_logits.safetensors";
    CliResult c = run_wkv({"logits", "-m", r.dir + "/" + file, "--tokens", list, "-o", out});
    ASSERT_EQ(c.code, 0) << c.err;
    auto lg = load_safetensors(out);
    ASSERT_TRUE(lg) << lg.error().message;
    const auto l = to_f32(lg->at("logits"));
    EXPECT_LT(rel_l2(l, train_logits), 1e-5) << file;  // inference vs training forward
    if (!prev.empty()) {
      EXPECT_EQ(l, prev);  // .pth and .safetensors: identical
    }
    prev = l;
  }
}

std::vector<std::string> csv_losses(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::vector<std::string> out;
  while (std::getline(f, line)) {
    auto cols = split(line, ',');
    if (cols.size() == 7 && !cols[2].empty() && cols[0] != "step") out.push_back(cols[2]);
  }
  return out;
}

TEST(TrainCli, ResumeContinuesExactly) {
  const TrainRun& r = short_run();
  ASSERT_EQ(r.train.code, 0) << r.train.err;
  const std::string dir2 = wkv::test::temp_dir() + "/train_cli_resumed";
  std::vector<std::string> a = {"train",  "-m",       r.dir + "/rwkv-15.pth",
                                "--data", r.data,     "-o",
                                dir2,     "--resume", r.dir + "/rwkv-15.optim.safetensors"};
  a.insert(a.end(), r.args.begin(), r.args.end());
  CliResult c = run_wkv(a);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.err.find("resumed at step 15/30"), std::string::npos) << c.err;
  const auto full = csv_losses(r.dir + "/train_log.csv"),
             resumed = csv_losses(dir2 + "/train_log.csv");
  ASSERT_EQ(full.size(), 30u);
  ASSERT_EQ(resumed.size(), 15u);
  for (size_t i = 0; i < 15; ++i) EXPECT_EQ(resumed[i], full[15 + i]) << "step " << 16 + i;
  auto a1 = load_safetensors(r.dir + "/rwkv-final.safetensors");
  auto a2 = load_safetensors(dir2 + "/rwkv-final.safetensors");
  ASSERT_TRUE(a1 && a2);
  for (const auto& [name, t] : *a1) EXPECT_EQ(to_f32(t), to_f32(a2->at(name))) << name;
  // a missing or mismatched optimizer state is an error
  a[8] = r.dir + "/rwkv-15.safetensors";  // parameters, not an optimizer state
  c = run_wkv(a);
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.err.find("rwkv-15.safetensors"), std::string::npos) << c.err;
}

// A crash while a checkpoint is being written (SIGKILL injected after the first bytes of the
// file, WKV_FAULT_KILL_IN_WRITE) leaves the checkpoint an earlier run wrote under that name
// untouched and loadable; only a temporary file is left behind.
TEST(TrainCli, KillingTrainingMidCheckpointLeavesThePreviousCheckpointIntact) {
  const std::string dir = wkv::test::temp_dir() + "/train_kill";
  std::filesystem::remove_all(dir);
  const std::string init = wkv::test::temp_dir() + "/train_kill_init.safetensors";
  ASSERT_EQ(run_wkv({"init", "-o", init, "--n-layer", "1", "--n-embd", "32", "--head-size", "16",
                     "--vocab", "256"})
                .code,
            0);
  const std::string data = wkv::test::temp_dir() + "/train_kill.txt";
  {
    std::ofstream f(data);
    for (int i = 0; i < 50; ++i) f << "the quick brown fox jumps over the lazy dog " << i << "\n";
  }
  auto train = [&](const std::string& seed, const std::string& env) {
    return run_wkv({"train", "-m", init, "--data", data, "-o", dir, "--batch", "2", "--ctx", "16",
                    "--steps", "3", "--warmup", "1", "--val-every", "0", "--seed", seed},
                   "", env);
  };
  auto bytes = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  CliResult first = train("1", "");
  ASSERT_EQ(first.code, 0) << first.err;
  for (const char* file : {"rwkv-final.pth", "rwkv-final.safetensors",
                           "rwkv-final.optim.safetensors"}) {
    SCOPED_TRACE(file);
    const std::string path = dir + "/" + file, before = bytes(path);
    ASSERT_FALSE(before.empty());
    // Another seed: the second run's checkpoint would differ from the first.
    CliResult r = train("2", std::string("WKV_FAULT_KILL_IN_WRITE=") + file);
    EXPECT_TRUE(r.code == 137 || r.code == -1) << "not killed: " << r.code << " " << r.err;
    EXPECT_EQ(bytes(path), before);
    auto t = load_tensors(path);
    ASSERT_TRUE(t) << t.error().message;
    size_t temps = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      temps += e.path().filename().string().rfind(std::string(file) + ".tmp.", 0) == 0;
    EXPECT_EQ(temps, 1u) << "the kill did not land inside the write";
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().filename().string().find(".tmp.") != std::string::npos)
        std::filesystem::remove(e.path());
  }
  // Without the fault the same run replaces the checkpoint.
  const std::string before = bytes(dir + "/rwkv-final.safetensors");
  ASSERT_EQ(train("2", "").code, 0);
  EXPECT_NE(bytes(dir + "/rwkv-final.safetensors"), before);
}

// On a terminal (a pty from util-linux `script`) progress is one bar redrawn in place with the
// step, loss, rate and ETA; the validation and final lines stay. Piped, it is plain lines.
TEST(TrainCli, ProgressIsABarOnATerminalAndLinesOtherwise) {
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no `script`";
  const TrainRun& r = short_run();
  ASSERT_EQ(r.train.code, 0) << r.train.err;
  EXPECT_EQ(r.train.err.find('\r'), std::string::npos);  // piped: no redraws
  EXPECT_NE(r.train.err.find("step 5/30  loss"), std::string::npos);
  const std::string dir = wkv::test::temp_dir() + "/train_tty";
  std::string cmd = shell_quote(WKV_EXE) + " train -m " + shell_quote(r.init) + " --data " +
                    shell_quote(r.data) + " -o " + shell_quote(dir) +
                    " --steps 6 --batch 2 --ctx 16 --warmup 1 --val-every 3";
  const std::string out = wkv::test::temp_dir() + "/train_tty.txt";
  ASSERT_EQ(std::system(("script -qec " + shell_quote(cmd) + " /dev/null > " + shell_quote(out) +
                         " 2>&1")
                            .c_str()),
            0);
  std::ifstream f(out, std::ios::binary);
  const std::string tty((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(tty.find("\r[####"), std::string::npos) << tty;
  EXPECT_NE(tty.find("step 1/6  loss"), std::string::npos) << tty;
  EXPECT_NE(tty.find("tok/s  ETA 0:00:0"), std::string::npos) << tty;
  EXPECT_NE(tty.find("step 3/6  loss"), std::string::npos) << tty;  // a validation line
  EXPECT_NE(tty.find("step 6/6  loss"), std::string::npos) << tty;
  EXPECT_NE(tty.find("]  83%  step 5/6"), std::string::npos) << tty;
}

TEST(TrainCli, BadInputExit1BadArgumentsExit2) {
  const std::string init = wkv::test::temp_dir() + "/train_init.safetensors";
  short_run();
  CliResult r = run_wkv(
      {"train", "-m", init, "--data", "/nonexistent/x.txt", "-o", wkv::test::temp_dir() + "/t2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent/x.txt: cannot open"), std::string::npos) << r.err;
  const std::string tiny = wkv::test::temp_dir() + "/tiny.txt";
  std::ofstream(tiny) << "too short";
  r = run_wkv({"train", "-m", init, "--data", tiny, "-o", wkv::test::temp_dir() + "/t2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("too few"), std::string::npos) << r.err;
  EXPECT_EQ(run_wkv({"train", "-m", init, "--data", tiny}).code, 2);
  EXPECT_EQ(run_wkv({"train", "--steps", "x"}).code, 2);
  EXPECT_EQ(run_wkv({"train", "--help"}).code, 0);
}

}  // namespace
}  // namespace wkv::train::test
