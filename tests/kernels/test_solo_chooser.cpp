// SoloChooser: times one-token products in the pool and alone, keeps the faster, re-probes.
#include <gtest/gtest.h>

#include "kernels/solo_chooser.hpp"

namespace wkv::kernels {
namespace {

// Feeds `calls` products costing `parallel` or `solo` seconds per multiply-add as the chooser
// asks, and returns how many products it ran solo.
size_t drive_calls(SoloChooser& c, size_t calls, double parallel, double solo) {
  size_t n_solo = 0;
  for (size_t i = 0; i < calls; ++i) {
    const bool s = c.solo();
    n_solo += s;
    c.record((s ? solo : parallel) * 1e6, 1e6);
  }
  return n_solo;
}

constexpr size_t kE = SoloChooser::kEpochCalls;
constexpr size_t kF = SoloChooser::kFirstEpochCalls;
constexpr size_t kW = SoloChooser::kWarmupCalls;

// `epochs` full-length epochs.
size_t drive(SoloChooser& c, size_t epochs, double parallel, double solo) {
  return drive_calls(c, epochs * kE, parallel, solo);
}
// The warm-up and the first two (short) probes.
size_t drive_first_probes(SoloChooser& c, double parallel, double solo) {
  return drive_calls(c, kW + 2 * kF, parallel, solo);
}

TEST(SoloChooser, KeepsThePoolWhenItIsFaster) {
  SoloChooser c;
  EXPECT_FALSE(c.solo());  // starts in the pool, untimed (the warm-up)
  EXPECT_EQ(drive_calls(c, kW, 1.0, 1.4), 0u);
  // then times the pool, briefly
  EXPECT_EQ(drive_calls(c, kF, 1.0, 1.4), 0u);
  EXPECT_EQ(drive_calls(c, kF, 1.0, 1.4), kF);  // then as briefly alone
  EXPECT_EQ(drive(c, SoloChooser::kRunEpochs, 1.0, 1.4), 0u);
  // and probes again: one more solo epoch after the parallel probe
  EXPECT_EQ(drive(c, 2, 1.0, 1.4), kE);
}

TEST(SoloChooser, IgnoresTheWarmUp) {
  SoloChooser c;
  // The pool is three times slower while the threads start (sharing one CPU, say), then
  // faster: the warm-up is not measured, so the pool is kept.
  EXPECT_EQ(drive_calls(c, kW, 3.0, 1.0), 0u);
  EXPECT_EQ(drive_calls(c, 2 * kF, 1.0, 1.4), kF);
  EXPECT_EQ(drive(c, SoloChooser::kRunEpochs, 1.0, 1.4), 0u);
}

TEST(SoloChooser, GoesSoloWhenThePoolIsSlower) {
  SoloChooser c;
  drive_first_probes(c, 1.15, 1.0);  // the probes: pool 15 % slower (a busy core)
  EXPECT_EQ(drive(c, SoloChooser::kRunEpochs, 1.15, 1.0), SoloChooser::kRunEpochs * kE);
  // re-probing sees the core free again and returns to the pool
  EXPECT_EQ(drive(c, 2, 0.7, 1.0), kE);
  EXPECT_EQ(drive(c, SoloChooser::kRunEpochs, 0.7, 1.0), 0u);
}

TEST(SoloChooser, NeedsAClearMarginToLeaveThePool) {
  SoloChooser c;
  drive_first_probes(c, 1.02, 1.0);  // solo only 2 % faster: within the noise of the probes
  EXPECT_EQ(drive(c, SoloChooser::kRunEpochs, 1.02, 1.0), 0u);
}

}  // namespace
}  // namespace wkv::kernels
