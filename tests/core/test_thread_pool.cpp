// The thread pool: every task runs exactly once, pools come and go without hanging (workers
// that start late or sleep), and many back-to-back jobs complete.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/thread_pool.hpp"

namespace wkv {
namespace {

TEST(ThreadPool, RunsEveryTaskExactlyOnce) {
  for (size_t threads : {1u, 2u, 3u, 8u}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (size_t n : {0u, 1u, 2u, 7u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.run(n, [&](size_t i) { hits[i].fetch_add(1); });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << threads << " " << n << " " << i;
    }
  }
}

TEST(ThreadPool, ManyJobsAndPoolsDoNotHang) {
  for (int k = 0; k < 50; ++k) {
    ThreadPool pool(3);  // destroyed at once, often before its workers ever ran
    if (k % 2) pool.run(4, [](size_t) {});
  }
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int k = 0; k < 20000; ++k) pool.run(3, [&](size_t i) { sum += static_cast<long>(i); });
  EXPECT_EQ(sum.load(), 20000L * 3);
}

TEST(CpuFeatures, AvailableCoresIsPositive) {
  EXPECT_GE(available_cores(), 1u);
  EXPECT_FALSE(cpu_features_str().empty());
}

}  // namespace
}  // namespace wkv
