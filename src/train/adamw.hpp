// The official RWKV-7 optimizer: AdamW (DeepSpeed FusedAdam, adam_w_mode) with three parameter
// groups, global-norm gradient clipping, and the trainer's warmup + cosine LR schedule.
// Source: ../shared/spec/TRAINING_REFERENCE.md §3-4 (RWKV-LM train_temp model.py/trainer.py).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/params.hpp"

namespace wkv::train {

// lr_1x: everything else (no decay); lr_2x: att.w0 (lr × 2, no decay); lr_decay: 2-D `.weight`
// matrices (emb, head, att.receptance/key/value/output, ffn.key/value) when weight_decay > 0.
enum class ParamGroup { lr_1x, lr_2x, lr_decay };
ParamGroup param_group(const std::string& name, const std::vector<int64_t>& shape,
                       double weight_decay);
const char* param_group_name(ParamGroup g);

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.99;
  double eps = 1e-18;
  double weight_decay = 0.1;  // lr_decay group only
  double grad_clip = 1.0;     // global L2 norm; <= 0 disables
};

struct ClipInfo {
  double total_norm = 0;  // global L2 norm of the gradients before clipping
  double coef = 1;        // max_norm / (total_norm + 1e-6) when applied, else 1
};

// torch.nn.utils.clip_grad_norm_ from the sum of squares of all gradients: the global norm and
// the coefficient max_norm / (norm + 1e-6) when that is below 1 (else 1; max_norm <= 0: off).
ClipInfo clip_info(double sum_of_squares, double max_norm);

// One AdamW update of n elements at step `step` (1-based, for the bias corrections): the
// gradient is g·gscale in fp32 (gscale: a clipping coefficient, 1 when already applied), the
// moments m, v and the parameters p are updated in place with lr and decoupled decay wd.
void adamw_update(float* p, const float* g, float gscale, float* m, float* v, size_t n, double lr,
                  double wd, int64_t step, const AdamWConfig& cfg);

class AdamW {
 public:
  AdamW(const Params<float>& p, const AdamWConfig& cfg);

  // Clips g in place (torch clip_grad_norm_), then one AdamW step on p with lr_base (att.w0
  // gets 2·lr_base). Bias correction uses the step count after increment.
  ClipInfo step(Params<float>& p, Grads<float>& g, double lr_base);

  const AdamWConfig& config() const { return cfg_; }
  Params<float> exp_avg, exp_avg_sq;  // moments, same shapes as the parameters
  int64_t steps = 0;                  // steps taken

 private:
  AdamWConfig cfg_;
  std::vector<ParamGroup> groups_;  // per parameter, in for_each_param order
};

// The official LR callback (trainer.py on_train_batch_start), before the group multiplier.
struct LrSchedule {
  double lr_init = 6e-4, lr_final = 6e-5;
  int64_t warmup_steps = 10;
  int64_t ctx_len = 512, real_bsz = 16;
  int64_t exit_tokens = 0;  // my_exit_tokens (> 0): the cosine runs over these tokens
  // global_step: steps of this run (warmup); real_step: steps since the start of training.
  double lr(int64_t global_step, int64_t real_step) const;
  double lr(int64_t step) const { return lr(step, step); }
  // progress >= 1 ends an official run (before training that batch).
  double progress(int64_t real_step) const;
};

}  // namespace wkv::train
