// wkv train -m MODEL --data FILE... -o DIR: trains an RWKV-7 checkpoint on text/JSONL with the
// official optimizer recipe; progress lines on stderr, a CSV log and atomic checkpoints in DIR
// (rwkv-STEP / rwkv-final as torch.save-format .pth and as .safetensors, plus the optimizer state
// rwkv-STEP.optim.safetensors for --resume).
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.hpp"
#include "progress.hpp"
#include "formats/formats.hpp"
#include "formats/pth_write.hpp"
#include "train/binidx.hpp"
#include "train/data.hpp"
#include "train/finetune.hpp"
#include "train/dist.hpp"
#include "train/loop.hpp"
#include "train/params.hpp"
#include "train/plot.hpp"

namespace wkv::cli {

namespace {

std::string hms(double s) {
  const long t = long(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

// --tune and its options (train/finetune.hpp).
struct FineTuneOptions {
  std::string tune = "full", state;
  train::LoraConfig lora;
  void add(CLI::App& app) {
    app.add_option("--tune", tune,
                   "what to train: full (all weights), state (only the per-layer initial WKV "
                   "states; default lr 0.1 -> 0.01) or lora (low-rank adapters on the large "
                   "matrices); state/lora write rwkv-*.state/.lora.safetensors")
        ->check(CLI::IsMember({"full", "state", "lora"}));
    app.add_option("--state", state,
                   "--tune state: start from this state file (.state.safetensors; default zero)");
    app.add_option("--lora-rank", lora.rank, "--tune lora: adapter rank R")
        ->check(CLI::Range(1, 1 << 16));
    app.add_option("--lora-alpha", lora.alpha, "--tune lora: scale alpha (W + alpha/R * B*A)")
        ->check(CLI::Range(1e-6, 1e6));
  }
  // The tuner (null for full training); state tuning's learning rates default higher.
  Expected<std::unique_ptr<train::Tuner>> make(const CLI::App& app, const train::Params<float>& p,
                                               train::TrainConfig& cfg, bool resuming) {
    std::unique_ptr<train::Tuner> none;
    const bool lora_opts = app.count("--lora-rank") || app.count("--lora-alpha");
    if (tune != "state" && !state.empty())
      return Error{"--state FILE is the starting state of --tune state"};
    if (tune != "lora" && lora_opts) return Error{"--lora-rank/--lora-alpha need --tune lora"};
    if (tune == "full") return none;
    if (resuming) return Error{"--resume continues full training only (not --tune " + tune + ")"};
    if (tune == "lora") {
      lora.seed = cfg.seed;
      return train::make_lora_tuner(p, lora, cfg.adamw);
    }
    if (!app.count("--lr-init")) cfg.lr_init = 0.1;  // AdamW steps of ~lr per state element
    if (!app.count("--lr-final")) cfg.lr_final = cfg.lr_init / 10;
    if (state.empty()) return train::make_state_tuner(p, cfg.adamw, nullptr, state);
    auto t = load_safetensors(state);
    if (!t) return t.error();
    return train::make_state_tuner(p, cfg.adamw, &*t, state);
  }
};

}  // namespace

int cmd_train(int argc, char** argv) {
  CLI::App app{"Train an RWKV-7 model on text or JSONL ({\"text\": ...}) documents.", "wkv train"};
  std::string model, out_dir;
  std::vector<std::string> data;
  TokenizerOptions tok;
  train::TrainConfig cfg;
  double val_fraction = 0.1;
  bool no_l2wrap = false;
  std::string resume;
  int64_t log_every = 10;
  app.add_option("-m,--model", model, "starting RWKV-7 checkpoint (e.g. from `wkv init`)")
      ->required();
  app.add_option("--data", data,
                 "text or .jsonl files (token 0 after each document), or binidx .bin/.idx")
      ->required();
  app.add_option("-o,--out", out_dir, "output directory: checkpoints and train_log.csv")
      ->required();
  tok.add(app);
  app.add_option("--batch", cfg.B, "sequences per step")->check(CLI::Range(1, 4096));
  app.add_option("--ctx", cfg.T, "tokens per sequence")->check(CLI::Range(1, 1 << 20));
  app.add_option("--steps", cfg.steps, "optimizer steps")->check(CLI::Range(1, 1 << 30));
  app.add_option("--lr-init", cfg.lr_init, "learning rate after warmup")
      ->check(CLI::PositiveNumber);
  app.add_option("--lr-final", cfg.lr_final, "learning rate at the end of the cosine")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", cfg.warmup_steps, "warmup steps")->check(CLI::Range(0, 1 << 30));
  app.add_option("--weight-decay", cfg.adamw.weight_decay, "AdamW decay of the 2-D weights")
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--grad-clip", cfg.adamw.grad_clip, "global gradient norm limit (0: off)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--seed", cfg.seed, "seed of the window sampler");
  app.add_option("--val-fraction", val_fraction, "held-out tail of the data for validation")
      ->check(CLI::Range(0.0, 0.9));
  app.add_option("--val-every", cfg.val_every, "validation loss every N steps")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--val-batches", cfg.val_batches, "at most N validation batches")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--save-every", cfg.save_every, "checkpoint every N steps (0: at the end)")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--log-every", log_every, "progress line every N steps")
      ->check(CLI::Range(1, 1 << 30));
  app.add_flag("--no-l2wrap", no_l2wrap, "train without the official L2Wrap term");
  app.add_option("--resume", resume,
                 "optimizer state (rwkv-N.optim.safetensors) to continue from, with -m rwkv-N.pth "
                 "and the same data and options: the run continues exactly at step N");
  FineTuneOptions ft;
  ft.add(app);
  return run(app, argc, argv, [&] {
    cfg.l2wrap = !no_l2wrap;
    // Under mpirun: one rank per process (MPI is finalised when `comm` goes); rank 0 writes.
    auto comm = train::make_comm();
    if (!comm) return fail(comm.error());
    cfg.comm = comm->get();
    const bool root = cfg.comm->is_root();
    auto tensors = load_tensors(model);
    if (!tensors) return fail(tensors.error());
    auto params = train::params_from_tensors<float>(*tensors, model);
    if (!params) return fail(params.error());
    tensors->clear();
    auto tk = make_tokenizer(tok, int(params->d.V), model);
    if (!tk) return fail(tk.error());
    std::vector<int32_t> stream;
    for (const auto& path : data) {
      if (path.ends_with(".bin") || path.ends_with(".idx")) {  // binidx: one token stream
        auto ids = train::read_binidx(path);
        if (!ids) return fail(ids.error());
        stream.insert(stream.end(), ids->begin(), ids->end());
        continue;
      }
      auto docs = train::read_documents(path);
      if (!docs) return fail(docs.error());
      auto ids = train::token_stream(*docs, [&](const std::string& d) { return (*tk)->encode(d); });
      stream.insert(stream.end(), ids.begin(), ids.end());
    }
    const size_t n_tokens = stream.size();
    auto corpus = train::split_corpus(std::move(stream), val_fraction, cfg.T);
    if (!corpus) return fail(corpus.error());
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) return fail(Error{out_dir + ": cannot create directory: " + ec.message()});
    const std::string csv_path = out_dir + "/train_log.csv";
    train::AdamW opt(*params, cfg.adamw);
    if (!resume.empty()) {
      std::map<std::string, std::string> meta;
      auto os = load_safetensors(resume, &meta);
      if (!os) return fail(os.error());
      int64_t step = -1;
      try {
        step = std::stoll(meta.count("step") ? meta["step"] : "-1");
      } catch (const std::exception&) {
      }
      if (step < 0) return fail(Error{resume + ": no step count in the metadata"});
      Status ls = train::optimizer_from_tensors(opt, *params, *os, step, resume);
      if (!ls) return fail(ls.error());
    }
    // --tune state|lora: the weights stay frozen, the loop trains the tuner's tensors.
    auto tuner = ft.make(app, *params, cfg, !resume.empty());
    if (!tuner) return fail(tuner.error());
    cfg.tuner = tuner->get();
    if (root && cfg.tuner)
      std::fprintf(stderr, "wkv train: --tune %s: %zu trainable values, the weights frozen\n",
                   cfg.tuner->kind(), cfg.tuner->trainable_count());
    // A resumed run appends to the log it continues (or starts one in a new directory).
    const bool append = !resume.empty() && std::filesystem::exists(csv_path);
    std::ofstream csv;
    if (root) csv.open(csv_path, append ? std::ios::app : std::ios::trunc);
    if (cfg.comm->any(root && !csv))  // every rank stops; rank 0 says why
      return root ? fail(Error{csv_path + ": cannot write"}) : 1;
    if (root && !append) csv << "step,tokens,loss,val_loss,lr,tokens_per_s,elapsed_s\n";
    const int world = cfg.comm->size();
    const std::string procs = world > 1 ? ", " + std::to_string(world) + " processes" : "";
    if (root)
      std::fprintf(stderr,
                   "wkv train: %zu tokens (%zu train, %zu validation), %zu parameters, "
                   "%lld steps of %zu x %zu tokens%s\n",
                   n_tokens, corpus->train.size(), corpus->val.size(), train::param_count(*params),
                   (long long)cfg.steps, cfg.B, cfg.T, procs.c_str());
    Progress progress;
    auto on_step = [&](const train::StepReport& r) {
      if (r.initial && !resume.empty()) {
        std::fprintf(stderr, "resumed at step %lld/%lld  val %f\n", (long long)r.step,
                     (long long)r.steps, r.val_loss.value_or(0));
        return;
      }
      csv << r.step << ',' << r.step * int64_t(cfg.B * cfg.T) << ',';
      if (!r.initial) csv << r.loss;
      csv << ',';
      if (r.val_loss) csv << *r.val_loss;
      csv << ',' << r.lr << ',' << r.tokens_per_s << ',' << r.elapsed_s << '\n';
      csv.flush();
      // A terminal gets a bar redrawn every step and keeps the validation and final lines; a
      // log gets a line every --log-every steps and at every validation.
      const std::string val = r.val_loss ? "  val " + std::to_string(*r.val_loss) : "";
      char text[256];
      if (r.initial)
        std::snprintf(text, sizeof text, "step 0/%lld%s", (long long)r.steps, val.c_str());
      else
        std::snprintf(text, sizeof text, "step %lld/%lld  loss %.4f%s  lr %.3g  %.0f tok/s  ETA %s",
                      (long long)r.step, (long long)r.steps, r.loss, val.c_str(), r.lr,
                      r.tokens_per_s, hms(r.eta_s).c_str());
      const bool keep = r.initial || r.val_loss || r.step == r.steps;
      if (progress.tty() && !keep)
        progress.update(double(r.step) / double(std::max<int64_t>(1, r.steps)), text);
      else if (keep || r.step % log_every == 0)
        progress.line(text);
    };
    auto save = [&](const train::Params<float>& p, const train::AdamW& o, int64_t step) -> Status {
      const std::string name = step == cfg.steps ? "rwkv-final" : "rwkv-" + std::to_string(step);
      // The loss curve so far as DIR/loss.svg (a plot that fails does not stop training).
      if (Status ps = train::write_loss_curve(out_dir, "wkv train " + out_dir); !ps)
        std::fprintf(stderr, "wkv train: warning: loss.svg: %s\n", ps.error().message.c_str());
      if (cfg.tuner)  // only what was trained: rwkv-*.state.safetensors / rwkv-*.lora.safetensors
        return train::save_tuned(*cfg.tuner, out_dir + "/" + name + "." + cfg.tuner->kind() +
                                                 ".safetensors", step);
      const TensorMap t = train::params_to_tensors(p);
      std::vector<std::string> order;  // the official trainer's order
      train::for_each_param(p, [&](const std::string& n, const auto&) { order.push_back(n); });
      WKV_TRY_STATUS(save_pth(out_dir + "/" + name + ".pth", t, order));
      const std::map<std::string, std::string> meta = {{"format", "wkv-train"},
                                                       {"step", std::to_string(step)}};
      WKV_TRY_STATUS(save_safetensors(out_dir + "/" + name + ".optim.safetensors",
                                      train::optimizer_to_tensors(o), meta));
      return save_safetensors(out_dir + "/" + name + ".safetensors", t, meta);
    };
    Status st = train::train_loop(*params, opt, *corpus, cfg, on_step, save);
    progress.finish();
    if (!st) return root ? fail(st.error()) : 1;  // other ranks: the same error, or rank 0's
    if (root && cfg.tuner)
      std::fprintf(stderr, "wkv train: wrote %s/rwkv-final.%s.safetensors and %s\n",
                   out_dir.c_str(), cfg.tuner->kind(), csv_path.c_str());
    else if (root)
      std::fprintf(stderr, "wkv train: wrote %s/rwkv-final.pth (+ .safetensors) and %s\n",
                   out_dir.c_str(), csv_path.c_str());
    return 0;
  });
}

WKV_COMMAND("train", "train an RWKV-7 model on text/JSONL (official AdamW recipe)", cmd_train);

}  // namespace wkv::cli
