// The training loop (see loop.hpp).
#include "train/loop.hpp"

#include <chrono>

#include "train/finetune.hpp"
#include "train/rwkv7.hpp"

namespace wkv::train {

double evaluate(const Params<float>& p, const std::vector<Batch>& batches, Comm* comm,
                const std::vector<std::vector<float>>* s0) {
  const size_t rank = comm ? size_t(comm->rank()) : 0, world = comm ? size_t(comm->size()) : 1;
  double total = 0;
  size_t rows = 0;
  Rwkv7Trainer<float> tr;
  std::vector<float> logits;
  for (size_t i = rank; i < batches.size(); i += world) {
    const Batch& b = batches[i];
    const size_t M = b.B * b.T;
    logits.resize(M * size_t(p.d.V));
    tr.forward(p, b.tokens.data(), b.B, b.T, s0, logits.data());
    total += cross_entropy(logits.data(), b.targets.data(), M, size_t(p.d.V), false,
                           static_cast<float*>(nullptr)) *
             double(M);
    rows += M;
  }
  if (world > 1) {  // every rank gets the sums over all batches
    double sums[2] = {total, double(rows)};
    comm->allreduce_sum(sums, 2);
    total = sums[0];
    rows = size_t(sums[1]);
  }
  return rows ? total / double(rows) : 0.0;
}

namespace {

// Rows [row0, row0 + n) of a batch.
Batch batch_rows(const Batch& b, size_t row0, size_t n) {
  Batch out;
  out.B = n;
  out.T = b.T;
  const auto first = std::ptrdiff_t(row0 * b.T), last = std::ptrdiff_t((row0 + n) * b.T);
  out.tokens.assign(b.tokens.begin() + first, b.tokens.begin() + last);
  out.targets.assign(b.targets.begin() + first, b.targets.begin() + last);
  return out;
}

// Each rank's gradients are the mean over its B/size rows: the sum over the ranks divided by
// size is the mean over all B rows, what one process computes (up to rounding).
void average_gradients(Comm& comm, Grads<float>& g, std::vector<float>& buf) {
  buf.clear();
  for_each_param(g, [&](const std::string&, Param<float>& x) {
    buf.insert(buf.end(), x.data.begin(), x.data.end());
  });
  comm.allreduce_sum(buf.data(), buf.size());
  const float inv = 1.0f / float(comm.size());
  size_t at = 0;
  for_each_param(g, [&](const std::string&, Param<float>& x) {
    for (float& v : x.data) v = buf[at++] * inv;
  });
}

// Rank 0's parameters and optimizer state on every rank (they load the same files; this makes
// sure they start identical).
void broadcast_state(Comm& comm, Params<float>& p, AdamW& opt) {
  for (Params<float>* q : {&p, &opt.exp_avg, &opt.exp_avg_sq})
    for_each_param(*q, [&](const std::string&, Param<float>& x) {
      comm.broadcast(x.data.data(), x.data.size() * sizeof(float), 0);
    });
  comm.broadcast(&opt.steps, sizeof opt.steps, 0);
}

}  // namespace

Status train_loop(Params<float>& p, AdamW& opt, const Corpus& data, const TrainConfig& cfg,
                  const std::function<void(const StepReport&)>& on_step,
                  const std::function<Status(const Params<float>&, const AdamW&, int64_t)>& save) {
  const size_t M = cfg.B * cfg.T, V = size_t(p.d.V);  // M: rows of the global batch
  Comm* comm = cfg.comm && cfg.comm->size() > 1 ? cfg.comm : nullptr;  // null: one process
  const size_t world = comm ? size_t(comm->size()) : 1;
  const bool root = !comm || comm->is_root();
  if (cfg.B % world != 0)
    return Error{"the batch (" + std::to_string(cfg.B) + " rows) must be divisible by the number "
                 "of processes (" + std::to_string(world) + "): each trains batch/processes rows"};
  const size_t B_local = cfg.B / world, M_local = B_local * cfg.T;
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

  if (comm) broadcast_state(*comm, p, opt);
  const int64_t start = opt.steps;
  if (start >= cfg.steps)
    return Error{"the optimizer state is at step " + std::to_string(start) + ", the run has " +
                 std::to_string(cfg.steps) + " steps: nothing to do"};
  WindowSampler sampler(data.train, cfg.T, cfg.seed);
  for (int64_t s = 0; s < start; ++s) sampler.next(cfg.B);  // the windows already trained on
  const std::vector<Batch> val = validation_batches(data.val, cfg.B, cfg.T, cfg.val_batches);
  Rwkv7Trainer<float> tr;
  Grads<float> g = zeros_like(p);
  LayerStates<float> ds0;  // initial-state gradients (state tuning)
  auto tune_evaluate = [&](const std::vector<Batch>& v) {
    return cfg.tuner ? evaluate(cfg.tuner->weights(p), v, comm, cfg.tuner->initial_state())
                     : evaluate(p, v, comm);
  };
  std::vector<float> logits(M_local * V), dlogits(M_local * V), grad_buf;
  const auto t0 = std::chrono::steady_clock::now();
  StepReport rep;
  rep.steps = cfg.steps;
  rep.step = start;
  if (!val.empty()) {
    rep.initial = true;
    rep.val_loss = tune_evaluate(val);
    if (root) on_step(rep);
    rep.initial = false;
  }
  for (int64_t step = start; step < cfg.steps; ++step) {
    Batch b = sampler.next(cfg.B);  // every rank draws the whole batch: the same data order
    if (comm) b = batch_rows(b, size_t(comm->rank()) * B_local, B_local);
    const Params<float>& w = cfg.tuner ? cfg.tuner->weights(p) : p;
    tr.forward(w, b.tokens.data(), b.B, b.T, cfg.tuner ? cfg.tuner->initial_state() : nullptr,
               logits.data());
    double loss =
        cross_entropy(logits.data(), b.targets.data(), M_local, V, cfg.l2wrap, dlogits.data());
    for_each_param(g, [](const std::string&, Param<float>& x) {
      std::fill(x.data.begin(), x.data.end(), 0.0f);
    });
    for (auto& x : ds0) std::fill(x.begin(), x.end(), 0.0f);
    tr.backward(w, dlogits.data(), g, cfg.tuner && cfg.tuner->needs_state_grad() ? &ds0 : nullptr);
    if (comm && !ds0.empty())  // the initial-state gradients are averaged as the others
      for (auto& x : ds0) {
        comm->allreduce_sum(x.data(), x.size());
        for (float& v : x) v /= float(world);
      }
    if (comm) {
      average_gradients(*comm, g, grad_buf);
      comm->allreduce_sum(&loss, 1);
      loss /= double(world);
    }
    const double lr = sched.lr(step);
    if (cfg.tuner)
      cfg.tuner->step(g, ds0, lr);
    else
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
      rep.val_loss = tune_evaluate(val);
    if (root) on_step(rep);
    if ((cfg.save_every > 0 && rep.step % cfg.save_every == 0) || last) {
      const Status saved = root ? save(p, opt, rep.step) : Status::success();
      if (comm && comm->any(!saved) && saved)  // rank 0 failed: the others stop too
        return Error{"rank 0 failed to write the checkpoint of step " + std::to_string(rep.step)};
      WKV_TRY_STATUS(saved);
    }
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
