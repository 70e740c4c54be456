// Fine-tuning end to end: `wkv train --tune state` and `--tune lora` on a tiny model lower the
// validation loss with the weights frozen; the exported state (`--state`) and adapters
// (`--lora`, `wkv merge`) reproduce the training forward at inference; the LoRA gradient
// projection passes a finite-difference check; mismatched files fail with clear errors.
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "cli_util.hpp"
#include "model/adapters.hpp"
#include "model/init.hpp"
#include "train/data.hpp"
#include "train/finetune.hpp"
#include "train/loop.hpp"
#include "train_test_util.hpp"

namespace wkv::train::test {
namespace {

// The validation losses of a train_log.csv, in order.
std::vector<double> val_losses(const std::string& csv) {
  std::ifstream f(csv);
  std::string line;
  std::vector<double> v;
  while (std::getline(f, line)) {
    auto cols = split(line, ',');
    if (cols.size() == 7 && cols[0] != "step" && !cols[3].empty()) v.push_back(std::stod(cols[3]));
  }
  return v;
}

struct TuneSetup {
  std::string dir, base, data;  // base: a briefly trained tiny model; data: the tuning corpus
  std::vector<std::string> common;  // options of every tuning run
  CliResult base_train, state_train, lora_train;
  std::string state_dir, lora_dir;
};

// One base model and one state-tuning and one LoRA run, shared by the tests below.
const TuneSetup& setup() {
  static const TuneSetup s = [] {
    TuneSetup x;
    x.dir = wkv::test::temp_dir() + "/finetune";
    const std::string init = x.dir + "_init.safetensors";
    CliResult i = run_wkv({"init", "-o", init, "--n-layer", "2", "--n-embd", "32", "--head-size",
                           "16", "--vocab", "256", "--seed", "5"});
    EXPECT_EQ(i.code, 0) << i.err;
    // The base learns one text briefly; the tuning runs adapt it to another.
    std::string a, b;
    const char* words[] = {"alpha", "beta", "gamma", "delta"};
    for (int d = 0; d < 40; ++d)
      for (int k = 0; k < 12; ++k) a += std::string(words[(d + k) % 4]) + " and ";
    const char* other[] = {"red fox", "blue owl", "green frog"};
    for (int d = 0; d < 40; ++d)
      for (int k = 0; k < 10; ++k) b += std::string(other[(d * 7 + k) % 3]) + " sees the moon. ";
    const std::string data_a = x.dir + "_a.txt";
    x.data = x.dir + "_b.txt";
    std::ofstream(data_a) << a;
    std::ofstream(x.data) << b;
    x.base_train = run_wkv({"train", "-m", init, "--data", data_a, "-o", x.dir + "_base",
                            "--steps", "20", "--batch", "4", "--ctx", "32", "--lr-init", "3e-3",
                            "--lr-final", "1e-3", "--warmup", "2", "--seed", "1"});
    EXPECT_EQ(x.base_train.code, 0) << x.base_train.err;
    x.base = x.dir + "_base/rwkv-final.safetensors";
    x.common = {"--data", x.data, "--steps", "30", "--batch", "4", "--ctx", "32", "--warmup", "2",
                "--val-every", "15", "--seed", "2", "--save-every", "15"};
    x.state_dir = x.dir + "_state";
    std::vector<std::string> args = {"train", "-m", x.base, "-o", x.state_dir, "--tune", "state",
                                     "--lr-init", "5e-2", "--lr-final", "1e-2"};
    args.insert(args.end(), x.common.begin(), x.common.end());
    x.state_train = run_wkv(args);
    x.lora_dir = x.dir + "_lora";
    args = {"train", "-m", x.base, "-o", x.lora_dir, "--tune", "lora", "--lora-rank", "4",
            "--lora-alpha", "8", "--lr-init", "1e-2", "--lr-final", "2e-3"};
    args.insert(args.end(), x.common.begin(), x.common.end());
    x.lora_train = run_wkv(args);
    return x;
  }();
  return s;
}

Params<float> load_params(const std::string& path) {
  auto t = load_tensors(path);
  EXPECT_TRUE(t) << t.error().message;
  auto p = params_from_tensors<float>(*t, path);
  EXPECT_TRUE(p) << p.error().message;
  return std::move(*p);
}

// The validation batches `wkv train` builds from the tuning corpus (bytes tokenizer, defaults).
std::vector<Batch> tuning_val_batches(const TuneSetup& s) {
  auto docs = read_documents(s.data);
  EXPECT_TRUE(docs);
  auto ids = token_stream(*docs, [](const std::string& d) {
    return std::vector<int32_t>(d.begin(), d.end());
  });
  auto c = split_corpus(std::move(ids), 0.1, 32);
  EXPECT_TRUE(c);
  return validation_batches(c->val, 4, 32, 8);
}

const std::vector<int32_t> kIds = {'r', 'e', 'd', ' ', 'f', 'o', 'x', ' ', 's', 'e', 'e', 's'};

std::string id_list() {
  std::string list;
  for (int32_t id : kIds) list += (list.empty() ? "" : ",") + std::to_string(id);
  return list;
}

// `wkv logits` over kIds with extra options.
std::vector<float> cli_logits(const std::string& model, const std::vector<std::string>& extra) {
  const std::string out = wkv::test::temp_dir() + "/finetune_logits.safetensors";
  std::vector<std::string> a = {"logits", "-m", model, "--tokens", id_list(), "-o", out};
  a.insert(a.end(), extra.begin(), extra.end());
  CliResult c = run_wkv(a);
  EXPECT_EQ(c.code, 0) << c.err;
  auto lg = load_safetensors(out);
  if (!lg) return {};
  return to_f32(lg->at("logits"));
}

std::vector<float> train_logits(const Params<float>& p, const LayerStates<float>* s0) {
  std::vector<float> l(kIds.size() * size_t(p.d.V));
  Rwkv7Trainer<float> tr;
  tr.forward(p, kIds.data(), 1, kIds.size(), s0, l.data());
  return l;
}

TEST(Finetune, StateTuningLowersValidationLossWithFrozenWeights) {
  const TuneSetup& s = setup();
  ASSERT_EQ(s.state_train.code, 0) << s.state_train.err;
  EXPECT_NE(s.state_train.err.find("--tune state: 1024 trainable values"), std::string::npos)
      << s.state_train.err;
  const auto v = val_losses(s.state_dir + "/train_log.csv");
  ASSERT_EQ(v.size(), 3u);
  std::printf("[figures] state tuning: val loss %.4f -> %.4f -> %.4f\n", v[0], v[1], v[2]);
  EXPECT_LT(v[2], v[0] - 0.05);
  // Only the states are written (checkpoints too), in the official name and layout.
  namespace fs = std::filesystem;
  EXPECT_TRUE(fs::exists(s.state_dir + "/rwkv-15.state.safetensors"));
  EXPECT_FALSE(fs::exists(s.state_dir + "/rwkv-final.safetensors"));
  EXPECT_FALSE(fs::exists(s.state_dir + "/rwkv-final.pth"));
  std::map<std::string, std::string> meta;
  auto st = load_safetensors(s.state_dir + "/rwkv-final.state.safetensors", &meta);
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_EQ(st->size(), 2u);
  EXPECT_EQ(st->at("blocks.1.att.time_state").shape, (std::vector<int64_t>{2, 16, 16}));
  EXPECT_EQ(st->at("blocks.1.att.time_state").dtype, DType::f32);
  EXPECT_EQ(meta["n_layer"], "2");
  EXPECT_EQ(meta["n_head"], "2");
  EXPECT_EQ(meta["head_size"], "16");
  EXPECT_EQ(meta["step"], "30");
  // The last validation loss is the base weights' with the exported state: nothing else moved.
  const Params<float> base = load_params(s.base);
  LayerStates<float> s0 = {to_f32(st->at("blocks.0.att.time_state")),
                           to_f32(st->at("blocks.1.att.time_state"))};
  EXPECT_NEAR(evaluate(base, tuning_val_batches(s), nullptr, &s0), v[2], 1e-5);
}

TEST(Finetune, StateFileAtInferenceMatchesTrainingForward) {
  const TuneSetup& s = setup();
  ASSERT_EQ(s.state_train.code, 0) << s.state_train.err;
  const std::string file = s.state_dir + "/rwkv-final.state.safetensors";
  auto st = load_safetensors(file);
  ASSERT_TRUE(st);
  const Params<float> base = load_params(s.base);
  LayerStates<float> s0 = {to_f32(st->at("blocks.0.att.time_state")),
                           to_f32(st->at("blocks.1.att.time_state"))};
  const auto want = train_logits(base, &s0), plain = train_logits(base, nullptr);
  const auto seq = cli_logits(s.base, {"--state", file});
  const auto rnn = cli_logits(s.base, {"--state", file, "--mode", "rnn"});
  const double r_seq = rel_l2(seq, want), r_rnn = rel_l2(rnn, want);
  std::printf("[figures] --state logits vs training forward with s0: rel %.2e (seq), %.2e (rnn); "
              "the state moves them by rel %.2e\n",
              r_seq, r_rnn, rel_l2(plain, want));
  EXPECT_LT(r_seq, 1e-4);
  EXPECT_LT(r_rnn, 1e-4);
  EXPECT_GT(rel_l2(plain, want), 1e-2);  // the tuned state does change the output
  // generate and chat take it too (greedy, deterministic).
  CliResult g = run_wkv({"generate", "-m", s.base, "--state", file, "-p", "red", "-n", "8",
                         "--temperature", "0"});
  EXPECT_EQ(g.code, 0) << g.err;
  CliResult c = run_wkv({"chat", "-m", s.base, "--state", file, "-n", "4", "--temperature", "0"},
                        "hello\n");
  EXPECT_EQ(c.code, 0) << c.err;
}

TEST(Finetune, LoraLowersValidationLossAndMergesExactly) {
  const TuneSetup& s = setup();
  ASSERT_EQ(s.lora_train.code, 0) << s.lora_train.err;
  const auto v = val_losses(s.lora_dir + "/train_log.csv");
  ASSERT_EQ(v.size(), 3u);
  std::printf("[figures] LoRA rank 4: val loss %.4f -> %.4f -> %.4f\n", v[0], v[1], v[2]);
  EXPECT_LT(v[2], v[0] - 0.05);
  const std::string file = s.lora_dir + "/rwkv-final.lora.safetensors";
  EXPECT_FALSE(std::filesystem::exists(s.lora_dir + "/rwkv-final.safetensors"));
  std::map<std::string, std::string> meta;
  auto lt = load_safetensors(file, &meta);
  ASSERT_TRUE(lt) << lt.error().message;
  EXPECT_EQ(lt->size(), 2u * 6 * 2);  // A and B for 6 matrices in 2 layers
  EXPECT_EQ(meta["lora_rank"], "4");
  EXPECT_EQ(meta["lora_alpha"], "8");
  EXPECT_EQ(lt->at("blocks.0.ffn.key.weight.lora_A").shape, (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(lt->at("blocks.0.ffn.key.weight.lora_B").shape, (std::vector<int64_t>{128, 4}));

  // W_eff = W + (8/4)·B·A on the training side.
  Params<float> eff = load_params(s.base);
  for_each_param(eff, [&](const std::string& name, Param<float>& w) {
    if (!is_lora_target(name)) return;
    const auto A = to_f32(lt->at(name + ".lora_A")), B = to_f32(lt->at(name + ".lora_B"));
    add_lora_delta(w.data.data(), A.data(), B.data(), size_t(w.shape[0]), size_t(w.shape[1]), 4,
                   2.0);
  });
  EXPECT_NEAR(evaluate(eff, tuning_val_batches(s)), v[2], 1e-5);  // what the run validated
  const auto want = train_logits(eff, nullptr);
  const auto at_load = cli_logits(s.base, {"--lora", file});
  for (const char* ext : {".safetensors", ".pth"}) {
    const std::string merged = s.dir + "_merged" + ext;
    CliResult m = run_wkv({"merge", "-m", s.base, "--lora", file, "-o", merged});
    ASSERT_EQ(m.code, 0) << m.err;
    const auto l = cli_logits(merged, {});
    EXPECT_LT(rel_l2(l, at_load), 1e-5) << ext;
    EXPECT_EQ(l, at_load) << ext;  // the same float32 weights
  }
  const double r = rel_l2(at_load, want);
  std::printf("[figures] --lora logits vs training forward with W_eff: rel %.2e\n", r);
  EXPECT_LT(r, 1e-5);
  EXPECT_GT(rel_l2(cli_logits(s.base, {}), want), 1e-3);  // the adapters do change the output
}

TEST(Finetune, LoraGradientProjectionMatchesFiniteDifferences) {
  V7Dims d;
  d.n_layer = 2;
  d.n_embd = 8;
  d.head_size = 4;
  d.vocab_size = 11;
  d.ffn_size = 16;
  d.lora_w = 3;
  d.lora_a = 2;
  d.lora_v = 3;
  d.lora_g = 4;
  auto t = random_v7(d, 7, DType::f32);
  ASSERT_TRUE(t) << t.error().message;
  auto pf = params_from_tensors<float>(*t, "tiny");
  ASSERT_TRUE(pf) << pf.error().message;
  const Params<double> base = params_cast<double>(*pf);
  const Batch b{2, 5, {1, 4, 4, 9, 0, 10, 2, 7, 3, 1}, {4, 4, 9, 0, 6, 2, 7, 3, 1, 5}};
  std::mt19937 rng(11);
  std::normal_distribution<double> nd(0.0, 0.5);
  const size_t R = 3;
  const double scale = 1.5;
  for (const std::string target : {"blocks.1.att.key.weight", "blocks.0.ffn.value.weight"}) {
    size_t out = 0, in = 0;
    for_each_param(base, [&](const std::string& n, const Param<double>& w) {
      if (n == target) out = size_t(w.shape[0]), in = size_t(w.shape[1]);
    });
    ASSERT_GT(out * in, 0u);
    std::vector<double> A(R * in), B(out * R);
    for (double& x : A) x = nd(rng);
    for (double& x : B) x = nd(rng);
    auto loss_with = [&](const std::vector<double>& a, const std::vector<double>& bb,
                         std::vector<double>* dW) {
      Params<double> p = base;
      for_each_param(p, [&](const std::string& n, Param<double>& w) {
        if (n != target) return;
        for (size_t o = 0; o < out; ++o)
          for (size_t i = 0; i < in; ++i) {
            double acc = 0;
            for (size_t r = 0; r < R; ++r) acc += bb[o * R + r] * a[r * in + i];
            w.data[o * in + i] += scale * acc;
          }
      });
      auto res = run_model(p, b, /*l2wrap=*/false);
      if (dW)
        for_each_param(res.grads, [&](const std::string& n, const Param<double>& g) {
          if (n == target) *dW = g.data;
        });
      return res.loss;
    };
    std::vector<double> dW;
    loss_with(A, B, &dW);
    std::vector<double> dA(A.size()), dB(B.size());
    lora_grads(dW.data(), A.data(), B.data(), out, in, R, scale, dA.data(), dB.data());
    auto fd = [&](std::vector<double>& x, size_t j) {
      const double h = 1e-5, keep = x[j];
      x[j] = keep + h;
      const double up = loss_with(A, B, nullptr);
      x[j] = keep - h;
      const double down = loss_with(A, B, nullptr);
      x[j] = keep;
      return (up - down) / (2 * h);
    };
    std::vector<double> fa, fb, aa, ab;
    for (size_t j = 0; j < A.size(); j += 2) fa.push_back(fd(A, j)), aa.push_back(dA[j]);
    for (size_t j = 0; j < B.size(); j += 2) fb.push_back(fd(B, j)), ab.push_back(dB[j]);
    EXPECT_LT(rel_l2(aa, fa), 1e-6) << target << " dA";
    EXPECT_LT(rel_l2(ab, fb), 1e-6) << target << " dB";
  }
}

TEST(Finetune, BadStateAndLoraFilesFailClearly) {
  const TuneSetup& s = setup();
  ASSERT_EQ(s.base_train.code, 0) << s.base_train.err;
  const std::string dir = wkv::test::temp_dir();
  // A state for a model with 8-wide heads, one with a layer missing, one with a stray tensor.
  const std::string bad_shape = dir + "/ft_bad_shape.state.safetensors";
  TensorMap t;
  for (int l = 0; l < 2; ++l)
    t[time_state_name(l)] = Tensor::from_f32({4, 8, 8}, std::vector<float>(256, 0.1f));
  ASSERT_TRUE(save_safetensors(bad_shape, t));
  CliResult r = run_wkv({"generate", "-m", s.base, "--state", bad_shape, "-p", "x", "-n", "2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(bad_shape + ": state tensor 'blocks.0.att.time_state' has shape [4, 8, 8]"
                                   ", this model needs [2, 16, 16]"),
            std::string::npos)
      << r.err;
  const std::string missing = dir + "/ft_missing.state.safetensors";
  t.clear();
  t[time_state_name(0)] = Tensor::from_f32({2, 16, 16}, std::vector<float>(512, 0.1f));
  ASSERT_TRUE(save_safetensors(missing, t));
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"logits", "-m", s.base, "--tokens", "1,2", "-o",
                                 dir + "/ft_x.safetensors", "--state", missing},
        std::vector<std::string>{"chat", "-m", s.base, "--state", missing},
        std::vector<std::string>{"train", "-m", s.base, "--data", s.data, "-o", dir + "/ft_x",
                                 "--tune", "state", "--state", missing}}) {
    r = run_wkv(cmd);
    EXPECT_EQ(r.code, 1) << cmd[0];
    EXPECT_NE(r.err.find(missing + ": state tensor 'blocks.1.att.time_state' is missing"),
              std::string::npos)
        << cmd[0] << ": " << r.err;
  }
  t[time_state_name(1)] = t[time_state_name(0)];
  t["blocks.2.att.time_state"] = t[time_state_name(0)];
  const std::string extra = dir + "/ft_extra.state.safetensors";
  ASSERT_TRUE(save_safetensors(extra, t));
  r = run_wkv({"generate", "-m", s.base, "--state", extra, "-p", "x", "-n", "2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("'blocks.2.att.time_state' is not an initial state of this model"),
            std::string::npos)
      << r.err;

  // LoRA files for another model: a target the model lacks, a wrong shape, no metadata.
  const std::map<std::string, std::string> meta = {{"lora_rank", "2"}, {"lora_alpha", "4"}};
  auto lora = [&](const std::string& name, const std::string& target, int64_t out, int64_t in,
                  const std::map<std::string, std::string>& m) {
    TensorMap l;
    l[target + ".lora_A"] = Tensor::from_f32({2, in}, std::vector<float>(size_t(2 * in), 0.1f));
    l[target + ".lora_B"] = Tensor::from_f32({out, 2}, std::vector<float>(size_t(2 * out), 0.1f));
    const std::string path = dir + "/" + name;
    EXPECT_TRUE(save_safetensors(path, l, m));
    return path;
  };
  const std::string other_layers = lora("ft_l5.lora.safetensors", "blocks.5.att.key.weight", 32, 32, meta);
  r = run_wkv({"merge", "-m", s.base, "--lora", other_layers, "-o", dir + "/ft_m.safetensors"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(other_layers + ": LoRA target tensor 'blocks.5.att.key.weight' is not in "
                                      "the model"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/ft_m.safetensors"));
  const std::string wide = lora("ft_wide.lora.safetensors", "blocks.0.att.key.weight", 64, 64, meta);
  r = run_wkv({"logits", "-m", s.base, "--tokens", "1,2", "-o", dir + "/ft_x.safetensors",
               "--lora", wide});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(wide + ": 'blocks.0.att.key.weight.lora_A' has shape [2, 64], the "
                              "model's blocks.0.att.key.weight [32, 32] with rank 2 needs [2, 32]"),
            std::string::npos)
      << r.err;
  const std::string nometa = lora("ft_nometa.lora.safetensors", "blocks.0.att.key.weight", 32, 32, {});
  r = run_wkv({"generate", "-m", s.base, "--lora", nometa, "-p", "x", "-n", "2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(nometa + ": no 'lora_alpha' in the metadata"), std::string::npos) << r.err;
  // Options that do not go together.
  r = run_wkv({"train", "-m", s.base, "--data", s.data, "-o", dir + "/ft_x", "--lora-rank", "4"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--lora-rank/--lora-alpha need --tune lora"), std::string::npos) << r.err;
  EXPECT_EQ(run_wkv({"train", "-m", s.base, "--data", s.data, "-o", dir + "/ft_x", "--tune", "x"})
                .code,
            2);
  EXPECT_EQ(run_wkv({"merge", "-m", s.base, "--lora", wide, "-o", dir + "/ft_m.bin"}).code, 2);
}

}  // namespace
}  // namespace wkv::train::test
