// The training loop (see loop.hpp).
#include "train/loop.hpp"

#include <chrono>

#include "train/rwkv7.hpp"

namespace wkv::train {

double evaluate(const Params<float>& p, const std::vector<Batch>& batches) {
  double total = 0;
  size_t rows = 0;
  Rwkv7Trainer<float> tr;
  std::vector<float> logits;
  for (const Batch& b : batches) {
    const size_t M = b.B * b.T;
    logits.resize(M * size_t(p.d.V));
    tr.forward(p, b.tokens.data(), b.B, b.T, nullptr, logits.data());
    total += cross_entropy(logits.data(), b.targets.data(), M, size_t(p.d.V), false,
                           static_cast<float*>(nullptr)) *
             double(M);
    rows += M;
  }
  return rows ? total / double(rows) : 0.0;
}

Status train_loop(Params<float>& p, AdamW& opt, const Corpus& data, const TrainConfig& cfg,
                  const std::function<void(const StepReport&)>& on_step,
                  const std::function<Status(const Params<float>&, const AdamW&, int64_t)>& save) {
  const size_t M = cfg.B * cfg.T, V = size_t(p.d.V);
  for (const auto* s : {&data.train, &data.val})
    for (int32_t id : *s)
      if (id < 0 || size_t(id) >= V)
        return Error{"token id " + std::to_string(id) + " is outside the model's vocabulary [0, " +
                     std::to_string(V) + ")"};
  LrSchedule sched;
  sched.lr_init = cfg.lr_init;
  sched.lr_final = cfg.lr_final;
  sched.warmup_steps = cfg.warmup_steps;
  sched.ctx_len = int64_t(cfg.T);
  sched.real_bsz = int64_t(cfg.B);
  sched.exit_tokens = cfg.steps * int64_t(M);
  if (sched.exit_tokens <= cfg.warmup_steps * int64_t(M))
    return Error{"warmup (" + std::to_string(cfg.warmup_steps) +
                 " steps) must be shorter than the run (" + std::to_string(cfg.steps) + " steps)"};

  const int64_t start = opt.steps;
  if (start >= cfg.steps)
    return Error{"the optimizer state is at step " + std::to_string(start) + ", the run has " +
                 std::to_string(cfg.steps) + " steps: nothing to do"};
  WindowSampler sampler(data.train, cfg.T, cfg.seed);
  for (int64_t s = 0; s < start; ++s) sampler.next(cfg.B);  // the windows already trained on
  const std::vector<Batch> val = validation_batches(data.val, cfg.B, cfg.T, cfg.val_batches);
  Rwkv7Trainer<float> tr;
  Grads<float> g = zeros_like(p);
  std::vector<float> logits(M * V), dlogits(M * V);
  const auto t0 = std::chrono::steady_clock::now();
  StepReport rep;
  rep.steps = cfg.steps;
  rep.step = start;
  if (!val.empty()) {
    rep.initial = true;
    rep.val_loss = evaluate(p, val);
    on_step(rep);
    rep.initial = false;
  }
  for (int64_t step = start; step < cfg.steps; ++step) {
    const Batch b = sampler.next(cfg.B);
    tr.forward(p, b.tokens.data(), b.B, b.T, nullptr, logits.data());
    const double loss =
        cross_entropy(logits.data(), b.targets.data(), M, V, cfg.l2wrap, dlogits.data());
    for_each_param(g, [](const std::string&, Param<float>& x) {
      std::fill(x.data.begin(), x.data.end(), 0.0f);
    });
    tr.backward(p, dlogits.data(), g, nullptr);
    const double lr = sched.lr(step);
    opt.step(p, g, lr);

    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep.step = step + 1;
    rep.loss = loss;
    rep.lr = lr;
    rep.elapsed_s = el;
    const double done = double(rep.step - start);
    rep.tokens_per_s = el > 0 ? done * double(M) / el : 0;
    rep.eta_s = el / done * double(cfg.steps - rep.step);
    rep.val_loss.reset();
    const bool last = rep.step == cfg.steps;
    if (!val.empty() && ((cfg.val_every > 0 && rep.step % cfg.val_every == 0) || last))
      rep.val_loss = evaluate(p, val);
    on_step(rep);
    if ((cfg.save_every > 0 && rep.step % cfg.save_every == 0) || last)
      WKV_TRY_STATUS(save(p, opt, rep.step));
  }
  return Status::success();
}

TensorMap optimizer_to_tensors(const AdamW& opt) {
  TensorMap t = params_to_tensors(opt.exp_avg, "exp_avg.");
  t.merge(params_to_tensors(opt.exp_avg_sq, "exp_avg_sq."));
  return t;
}

Status optimizer_from_tensors(AdamW& opt, const Params<float>& p, const TensorMap& t, int64_t steps,
                              const std::string& where) {
  for (auto [prefix, dst] : {std::pair{std::string("exp_avg."), &opt.exp_avg},
                             std::pair{std::string("exp_avg_sq."), &opt.exp_avg_sq}}) {
    TensorMap sub;
    for (const auto& [name, ten] : t)
      if (name.rfind(prefix, 0) == 0) sub[name.substr(prefix.size())] = ten;
    auto m = params_from_tensors<float>(sub, where + " (" + prefix + "*)");
    if (!m) return m.error();
    std::vector<std::vector<int64_t>> a, b;
    for_each_param(*m, [&](const std::string&, const Param<float>& x) { a.push_back(x.shape); });
    for_each_param(p, [&](const std::string&, const Param<float>& x) { b.push_back(x.shape); });
    if (a != b) return Error{where + ": " + prefix + "* shapes do not match the model"};
    *dst = std::move(*m);
  }
  if (steps < 0) return Error{where + ": negative step count"};
  opt.steps = steps;
  return Status::success();
}

}  // namespace wkv::train
