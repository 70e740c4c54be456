// Whether one-token products should use the thread pool or the calling thread alone, chosen
// from measured speed. On an idle machine the pool wins (1.3-1.5x at 2 threads); when another
// process holds a core, every product waits on whichever thread the OS has descheduled, and the
// pool lost about 15 % against one thread here. So the chooser times products both ways in
// turn and keeps the faster:
//   probe-parallel (kEpochCalls products) -> probe-solo (kEpochCalls) -> run the faster
//   (kRunEpochs x kEpochCalls) -> probe again,
// comparing seconds per multiply-add summed over each epoch (an epoch spans many tokens, so
// both probes see the same mix of matrices). Solo must be kSoloMargin faster to be chosen.
// Probing costs about 1/(kRunEpochs + 2) of the time at the slower setting. The first two
// probes are shorter (kFirstEpochCalls, about 8 tokens of a 12-layer RWKV-7): with full-length
// ones the first ~25 generated tokens of every run went alone, which on an idle 2-core machine
// cost a 64-token `wkv bench` a fifth of its 2-thread speed. Before the first probe, the first
// kWarmupCalls products run in the pool untimed: while a new pool's threads settle (Linux woke
// a worker on the caller's CPU and left them sharing it for a while) the pool measured slower
// than one thread, and about half of all 2-thread runs on this project's 2-vCPU machine then
// generated alone until the next probe, ~800 tokens later (12 x 768 q4_k_m: 73 instead of
// 105 tok/s). Results never depend on the choice (kernels give the same bits for any split).
// A "product" here is one hand-off: a matmul_batch of several products counts once (a 12 x 768
// RWKV-7 token is 61 of them: five per layer and the head).
#pragma once

#include <cstddef>

namespace wkv::kernels {

class SoloChooser {
 public:
  static constexpr size_t kEpochCalls =
      2048;  // products per probe (~34 tokens of a 12-layer RWKV-7)
  static constexpr size_t kFirstEpochCalls = 512;  // the first probe pair (~8 such tokens)
  static constexpr size_t kWarmupCalls = 512;      // untimed, in the pool, before the first probe
  static constexpr size_t kRunEpochs = 32;
  static constexpr double kSoloMargin = 0.95;

  // Whether the next product should run on the calling thread alone.
  bool solo() const { return phase_ == Phase::kProbeSolo || (phase_ == Phase::kRun && run_solo_); }

  // A product of `macs` multiply-adds took `seconds`, run as solo() said.
  void record(double seconds, double macs) {
    if (phase_ == Phase::kWarmup) {
      if (++calls_ >= kWarmupCalls) {
        calls_ = 0;
        phase_ = Phase::kProbeParallel;
      }
      return;
    }
    sec_ += seconds;
    macs_ += macs;
    if (++calls_ < (decided_ ? kEpochCalls : kFirstEpochCalls)) return;
    const double rate = macs_ > 0 ? sec_ / macs_ : 0.0;
    calls_ = 0;
    sec_ = macs_ = 0;
    switch (phase_) {
      case Phase::kProbeParallel:
        parallel_rate_ = rate;
        phase_ = Phase::kProbeSolo;
        break;
      case Phase::kProbeSolo:
        run_solo_ = rate < parallel_rate_ * kSoloMargin;
        decided_ = true;
        phase_ = Phase::kRun;
        epochs_ = 0;
        break;
      case Phase::kWarmup:
        break;
      case Phase::kRun:
        if (++epochs_ >= kRunEpochs) phase_ = Phase::kProbeParallel;
        break;
    }
  }

 private:
  enum class Phase { kWarmup, kProbeParallel, kProbeSolo, kRun };
  Phase phase_ = Phase::kWarmup;
  bool run_solo_ = false;
  bool decided_ = false;  // the first (short) probe pair is done
  size_t calls_ = 0, epochs_ = 0;
  double sec_ = 0, macs_ = 0, parallel_rate_ = 0;
};

}  // namespace wkv::kernels
