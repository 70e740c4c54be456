// wkv perplexity -m MODEL --text FILE [tokenizer options] [--ctx N] [--threads N] [--reset]
// [--max-tokens N] [--json]
//
// The text is tokenized and fed through forward_seq in windows of --ctx tokens. By default the
// recurrent state is carried from window to window, so the whole text is scored as one sequence
// (every token but the first, each predicted from everything before it) and --ctx only bounds
// memory ([ctx, vocab] logits). With --reset each window starts from a fresh state and its
// first token is not scored (the usual fixed-context perplexity).
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "default_model.hpp"
#include "core/file.hpp"
#include "kernels/kernels.hpp"

namespace wkv::cli {

int cmd_perplexity(int argc, char** argv) {
  CLI::App app{"Perplexity of a model over a text file (quantization loss as a number).",
               "wkv perplexity"};
  std::string model, text_path;
  TokenizerOptions to;
  int ctx = 256, threads = 0;
  int64_t max_tokens = 0;
  bool reset = false, json = false;
  app.add_option("-m,--model", model, "checkpoint (.pth, .safetensors, rwkv.cpp .bin, .gguf); default: the bundled model (models/)");
  app.add_option("--text", text_path, "text file to score")->required();
  to.add(app);
  AdapterOptions adapters;
  adapters.add(app);
  app.add_option("--ctx", ctx, "tokens per forward_seq window (default 256)")->check(CLI::Range(2, 1 << 20));
  app.add_option("--threads", threads, "matmul threads (0 = all cores)")->check(CLI::Range(0, 1024));
  app.add_option("--max-tokens", max_tokens, "score only the first N tokens (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--reset", reset, "fresh state per window instead of carrying it");
  app.add_flag("--json", json, "print one JSON object");
  return run(app, argc, argv, [&] {
    if (Status s = use_default_model(model); !s) return fail(s.error());
    auto text = read_text_file(text_path, size_t{1} << 30);
    if (!text) return fail(text.error());
    const auto t_load = std::chrono::steady_clock::now();
    auto m = load_model_file(model, adapters);
    if (!m) return fail(m.error());
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
    Model& net = **m;
    const auto V = static_cast<size_t>(net.hparams().vocab_size);
    auto tok = make_model_tokenizer(to, net, model);
    if (!tok) return fail(tok.error());
    std::vector<int32_t> ids = (*tok)->encode(*text);
    if (max_tokens > 0 && static_cast<int64_t>(ids.size()) > max_tokens) ids.resize(static_cast<size_t>(max_tokens));
    if (ids.size() < 2) return fail(Error{text_path + ": the text has fewer than 2 tokens"});
    if (threads > 0) kernels::set_threads(static_cast<size_t>(threads));

    std::vector<float> logits(static_cast<size_t>(ctx) * V);
    State state = net.new_state();
    double nll = 0;
    size_t scored = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(ctx)) {
      const size_t n = std::min(ids.size() - start, static_cast<size_t>(ctx));
      if (reset) state.reset();
      net.forward_seq(std::span<const int32_t>(ids.data() + start, n), state, logits.data(), Logits::all);
      for (size_t t = 0; t < n; ++t) {
        const size_t target = start + t + 1;
        if (target >= ids.size() || (reset && t + 1 >= n)) break;
        const float* row = logits.data() + t * V;
        float mx = row[0];
        for (size_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
        double sum = 0;
        for (size_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
        nll += mx + std::log(sum) - row[static_cast<size_t>(ids[target])];
        ++scored;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ppl = std::exp(nll / static_cast<double>(scored));
    const double tok_s = static_cast<double>(ids.size()) / std::max(secs, 1e-9);
    if (json) {
      nlohmann::json j = {{"model", model},
                          {"text", text_path},
                          {"perplexity", ppl},
                          {"nll_per_token", nll / static_cast<double>(scored)},
                          {"bits_per_byte", nll / std::log(2.0) / static_cast<double>(text->size())},
                          {"tokens", ids.size()},
                          {"scored", scored},
                          {"ctx", ctx},
                          {"state", reset ? "reset per window" : "carried"},
                          {"threads", kernels::threads()},
                          {"seconds", secs},
                          {"tokens_per_s", tok_s},
                          {"load_seconds", load_s}};
      std::cout << j.dump() << "\n";
    } else {
      std::printf("perplexity %.4f over %zu scored tokens (%zu tokens, ctx %d, state %s); %.1f tok/s, %zu threads\n",
                  ppl, scored, ids.size(), ctx, reset ? "reset per window" : "carried", tok_s,
                  kernels::threads());
    }
    return 0;
  });
}

WKV_COMMAND("perplexity", "perplexity of a model over a text file", cmd_perplexity);

}  // namespace wkv::cli
