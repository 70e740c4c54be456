// `wkv train` under mpirun (data parallelism over processes): 2 ranks reproduce the
// single-process run's losses (the same global batches, gradients averaged over the ranks) and
// write the same checkpoints; a batch the ranks cannot share fails on every rank with a clear
// message. Registered only when MPI and an MPI launcher were found (WKV_MPIEXEC).
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cli_util.hpp"
#include "formats/formats.hpp"
#include "test_util.hpp"

namespace wkv::train::test {
namespace {

// Relative tolerance of every loss of the 2-rank run against the 1-process run: the ranks sum
// their half-batch mean gradients and halve them, which rounds differently from one mean over
// the whole batch (float32), and AdamW carries that through 10 steps. Observed: 0 at the CSV's
// 6 significant digits; checkpoint tensors differ by up to ~5e-5 of their largest element (Adam
// divides by small second moments, which magnifies the rounding).
constexpr double kLossRelTol = 1e-4;
// Checkpoint tensors: max |a - b| / (max |b| + 1e-6) per tensor.
constexpr double kParamRelTol = 1e-3;

// The launcher with what a small CI container needs: more ranks than cores, running as root,
// no binding, no CMA single-copy (often denied in containers); Open MPI reads these from the
// environment and other MPIs ignore them.
CliResult run_mpi(int ranks, const std::vector<std::string>& args) {
  std::string env =
      "OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none "
      "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_ALLOW_RUN_AS_ROOT=1 "
      "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 "
      // Open MPI's own allocations are not ours to leak-check (sanitizer builds).
      "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" ";
  // A hang (a rank left waiting in a collective) fails the test instead of blocking CTest.
  env += "timeout 120 " + wkv::test::shell_quote(WKV_MPIEXEC) + " -n " + std::to_string(ranks);
  return wkv::test::run_wkv(args, "", env);
}

std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    rows.emplace_back(1);
    for (char c : line) {
      if (c == ',')
        rows.back().emplace_back();
      else
        rows.back().back() += c;
    }
  }
  return rows;
}

struct Setup {
  std::string dir, init, data;
};

const Setup& setup() {
  static const Setup s = [] {
    Setup x;
    x.dir = wkv::test::temp_dir() + "/train_mpi";
    x.init = x.dir + "_init.safetensors";
    CliResult i = wkv::test::run_wkv({"init", "-o", x.init, "--n-layer", "2", "--n-embd", "32",
                                      "--head-size", "16", "--vocab", "256", "--seed", "5"});
    EXPECT_EQ(i.code, 0) << i.err;
    std::string text;
    const char* words[] = {"north", "south", "east", "west", "up"};
    for (int d = 0; d < 50; ++d)
      for (int k = 0; k < 10; ++k) text += std::string(words[(d * 3 + k) % 5]) + " then ";
    x.data = x.dir + "_corpus.txt";
    std::ofstream(x.data) << text;
    return x;
  }();
  return s;
}

std::vector<std::string> train_args(const std::string& out, int batch) {
  const Setup& s = setup();
  return {"train",   "-m",       s.init, "--data",      s.data, "-o",         out,
          "--steps", "10",       "--batch", std::to_string(batch), "--ctx", "32", "--lr-init",
          "3e-3",    "--warmup", "2",    "--val-every", "5",    "--log-every", "5",
          "--seed",  "4",        "--save-every", "5"};
}

TEST(TrainMpi, TwoRanksReproduceOneProcess) {
  const std::string one = setup().dir + "/one", two = setup().dir + "/two";
  CliResult a = wkv::test::run_wkv(train_args(one, 4));
  ASSERT_EQ(a.code, 0) << a.err;
  CliResult b = run_mpi(2, train_args(two, 4));
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  // Rank 0 alone reports: one header naming the processes, one final step line.
  EXPECT_NE(b.err.find("steps of 4 x 32 tokens, 2 processes"), std::string::npos) << b.err;
  size_t finals = 0;
  for (size_t at = 0; (at = b.err.find("step 10/10  loss", at)) != std::string::npos; ++at) ++finals;
  EXPECT_EQ(finals, 1u) << b.err;

  const auto ra = csv_rows(one + "/train_log.csv"), rb = csv_rows(two + "/train_log.csv");
  ASSERT_EQ(ra.size(), 11u);  // step 0 (validation) and steps 1..10
  ASSERT_EQ(rb.size(), ra.size());
  double worst = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    ASSERT_EQ(ra[i].size(), 7u);
    ASSERT_EQ(rb[i].size(), 7u);
    EXPECT_EQ(ra[i][0], rb[i][0]);  // step
    EXPECT_EQ(ra[i][1], rb[i][1]);  // tokens (global)
    for (int c : {2, 3, 4}) {       // loss, val_loss, lr
      ASSERT_EQ(ra[i][c].empty(), rb[i][c].empty()) << "row " << i << " column " << c;
      if (ra[i][c].empty()) continue;
      const double x = std::stod(ra[i][c]), y = std::stod(rb[i][c]);
      const double rel = std::fabs(x - y) / std::max(std::fabs(x), 1e-12);
      worst = std::max(worst, rel);
      EXPECT_LE(rel, kLossRelTol) << "row " << i << " column " << c << ": " << x << " vs " << y;
    }
  }
  std::printf("[figures] 2 ranks vs 1 process: worst loss rel diff %.2g (tolerance %.0e; the CSV "
              "holds 6 significant digits)\n",
              worst, kLossRelTol);

  double worst_param = 0;
  for (const char* name : {"rwkv-5.safetensors", "rwkv-final.safetensors"}) {
    auto ta = load_safetensors(one + "/" + name), tb = load_safetensors(two + "/" + name);
    ASSERT_TRUE(ta) << ta.error().message;
    ASSERT_TRUE(tb) << tb.error().message;
    ASSERT_EQ(ta->size(), tb->size());
    for (const auto& [n, x] : *ta) {
      ASSERT_TRUE(tb->count(n)) << n;
      const Tensor& y = tb->at(n);
      ASSERT_EQ(x.shape, y.shape) << n;
      const std::vector<float> fx = to_f32(x), fy = to_f32(y);
      double diff = 0, mag = 0;
      for (size_t i = 0; i < fx.size(); ++i) {
        diff = std::max(diff, std::fabs(double(fx[i]) - double(fy[i])));
        mag = std::max(mag, std::fabs(double(fx[i])));
      }
      EXPECT_LE(diff / (mag + 1e-6), kParamRelTol) << name << " " << n;
      worst_param = std::max(worst_param, diff / (mag + 1e-6));
    }
  }
  std::printf("[figures] 2 ranks vs 1 process: worst checkpoint tensor max-rel diff %.2g "
              "(tolerance %.0e)\n",
              worst_param, kParamRelTol);
  EXPECT_TRUE(std::filesystem::exists(two + "/rwkv-final.pth"));
  EXPECT_TRUE(std::filesystem::exists(two + "/rwkv-final.optim.safetensors"));
}

TEST(TrainMpi, BatchNotDivisibleByRanksFails) {
  const std::string out = setup().dir + "/odd";
  CliResult r = run_mpi(2, train_args(out, 3));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("the batch (3 rows) must be divisible by the number of processes (2)"),
            std::string::npos)
      << r.out << r.err;
}

// Rank 0 alone writes checkpoints; when that fails, every rank stops (no rank waits forever in
// the next collective) and the job fails with rank 0's message.
TEST(TrainMpi, CheckpointErrorOnRankZeroStopsEveryRank) {
  const std::string out = setup().dir + "/blocked";
  std::filesystem::create_directories(out + "/rwkv-5.safetensors");  // a directory in the way
  CliResult r = run_mpi(2, train_args(out, 4));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.code, 124) << "timed out: a rank hung";
  EXPECT_NE(r.err.find("rwkv-5.safetensors"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.err.find("step 10/10"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace wkv::train::test
