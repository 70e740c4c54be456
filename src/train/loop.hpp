// The training loop: seeded random windows, forward/backward, AdamW with the official groups and
// LR schedule, periodic validation loss, progress reports and checkpoints through callbacks.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "train/adamw.hpp"
#include "train/data.hpp"
#include "train/dist.hpp"
#include "train/params.hpp"

namespace wkv::train {

class Tuner;  // train/finetune.hpp

struct TrainConfig {
  size_t B = 4, T = 64;  // batch rows, tokens per row
  int64_t steps = 100;
  double lr_init = 6e-4, lr_final = 6e-5;
  int64_t warmup_steps = 10;
  AdamWConfig adamw;
  bool l2wrap = true;
  uint64_t seed = 1;
  int64_t val_every = 50;  // validation loss every N steps (and at the start and end)
  size_t val_batches = 8;  // at most this many validation batches
  int64_t save_every = 0;  // checkpoint every N steps (0: only at the end)
  // Data parallelism (null: one process). Every rank draws the same global batch of B rows
  // (B % size == 0), runs its contiguous B/size rows and the gradients are averaged, so every
  // rank takes the same step; validation batches are split across ranks. Only rank 0 calls
  // on_step and save; a save error stops every rank.
  Comm* comm = nullptr;
  // Fine-tuning (train/finetune.hpp): when set, the weights stay frozen and the loop trains what
  // the tuner holds (forward on tuner->weights() from tuner->initial_state(), tuner->step()).
  Tuner* tuner = nullptr;
};

struct StepReport {
  int64_t step = 0;         // steps done
  int64_t steps = 0;        // of
  double loss = 0;          // training loss of this step's batch
  double lr = 0;            // base learning rate used
  double tokens_per_s = 0;  // since the start
  double elapsed_s = 0, eta_s = 0;
  std::optional<double> val_loss;
  bool initial = false;  // the report before the first step (only val_loss is set)
};

// Mean cross entropy over the batches (weighted by rows). With a communicator of several
// ranks, rank r evaluates batches r, r + size, ... and every rank gets the total.
// s0: initial WKV states per layer (null: zero).
double evaluate(const Params<float>& p, const std::vector<Batch>& batches, Comm* comm = nullptr,
                const std::vector<std::vector<float>>* s0 = nullptr);

// Trains p in place with `opt` (fresh, or restored to resume: training continues at step
// opt.steps, drawing the same windows and learning rates as an uninterrupted run). on_step after
// every step (and once before the first, with only val_loss); save(p, opt, step) every
// save_every steps and at the end. A save error stops training and is returned.
Status train_loop(Params<float>& p, AdamW& opt, const Corpus& data, const TrainConfig& cfg,
                  const std::function<void(const StepReport&)>& on_step,
                  const std::function<Status(const Params<float>&, const AdamW&, int64_t)>& save);

// The optimizer state as tensors "exp_avg.<name>", "exp_avg_sq.<name>" (step count in
// metadata "step"), and back: shapes must match p's; errors name `where`.
TensorMap optimizer_to_tensors(const AdamW& opt);
Status optimizer_from_tensors(AdamW& opt, const Params<float>& p, const TensorMap& t, int64_t steps,
                              const std::string& where);

}  // namespace wkv::train
