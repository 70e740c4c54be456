// wkv logits: run a token sequence (sequence or RNN mode, optional state in/out) and write a
// float32 tensor `logits` [T, vocab] to a safetensors file.
#include <iostream>

#include "cli.hpp"
#include "kernels/kernels.hpp"
#include "formats/formats.hpp"

namespace wkv::cli {

int cmd_logits(int argc, char** argv) {
  CLI::App app{"Write the logits after each token as float32 `logits` [T, vocab].", "wkv logits"};
  std::string model, tokens, mode = "seq", state_in, state_out, out;
  app.add_option("-m,--model", model, "checkpoint (.pth or .safetensors)")->required();
  int threads = 0;
  app.add_option("--threads", threads, "threads for matrix products (0 = all cores available)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--tokens", tokens, "comma-separated token ids")->required();
  app.add_option("--mode", mode, "seq: whole sequence at once; rnn: one token per step")
      ->check(CLI::IsMember({"seq", "rnn"}));
  app.add_option("--state-in", state_in, "start from this state file (.safetensors)");
  AdapterOptions adapters;
  adapters.add(app);
  app.add_option("--state-out", state_out, "write the final state here (.safetensors)");
  app.add_option("-o,--output", out, "output .safetensors file")->required();
  return run(app, argc, argv, [&] {
    auto ids = parse_ids(tokens);
    if (!ids) {
      std::cerr << "wkv logits: error: " << ids.error().message << "\n" << app.help();
      return kExitUsage;
    }
    kernels::set_threads(static_cast<size_t>(threads));
    auto m = load_model_file(model, adapters);
    if (!m) return fail(m.error());
    Model& net = **m;
    const int V = net.hparams().vocab_size;
    for (size_t i = 0; i < ids->size(); ++i)
      if ((*ids)[i] < 0 || (*ids)[i] >= V)
        return fail(Error{"token " + std::to_string((*ids)[i]) + " (item " + std::to_string(i + 1) +
                          ") is outside the model's vocabulary 0.." + std::to_string(V - 1)});
    State state = net.new_state();
    if (!state_in.empty()) {
      auto st = load_safetensors(state_in);
      if (!st) return fail(st.error());
      Status s = state.from_tensors(*st, state_in);
      if (!s) return fail(s.error());
    }
    const size_t T = ids->size();
    std::vector<float> logits(T * V);
    if (mode == "seq") {
      net.forward_seq(*ids, state, logits.data(), Logits::all);
    } else {
      for (size_t t = 0; t < T; ++t) net.forward_one((*ids)[t], state, logits.data() + t * V);
    }
    TensorMap o;
    o["logits"] = Tensor::from_f32({static_cast<int64_t>(T), V}, std::move(logits));
    Status s = save_safetensors(out, o);
    if (!s) return fail(s.error());
    if (!state_out.empty()) {
      Status ss = save_safetensors(state_out, state.to_tensors(),
                                   {{"format", "wkv-state"},
                                    {"version", std::string(version_name(net.hparams().version))}});
      if (!ss) return fail(ss.error());
    }
    return 0;
  });
}

WKV_COMMAND("logits", "write the logits of a token sequence to a safetensors file", cmd_logits);

}  // namespace wkv::cli
