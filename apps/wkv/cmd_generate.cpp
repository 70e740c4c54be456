// wkv generate: sample text after a prompt, streamed to stdout; a summary line to stderr.
#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "default_model.hpp"
#include "kernels/kernels.hpp"
#include "runtime/generate.hpp"

namespace wkv::cli {

int cmd_generate(int argc, char** argv) {
  CLI::App app{"Generate text after a prompt, streamed to standard output.", "wkv generate"};
  std::string model, prompt;
  int n = 200;
  SamplerConfig sc;
  sc.temperature = 1.0f;
  sc.top_p = 0.85f;
  std::vector<std::string> stops;
  TokenizerOptions to;
  app.add_option("-m,--model", model, "checkpoint (.pth or .safetensors); default: the bundled model (models/)");
  int threads = 0;
  app.add_option("--threads", threads, "threads for matrix products (0 = all cores available)")
      ->check(CLI::Range(0, 1024));
  to.add(app);
  AdapterOptions adapters;
  adapters.add(app);
  app.add_option("-p,--prompt", prompt, "the prompt text")->required();
  app.add_option("-n,--tokens", n, "tokens to generate at most")->check(CLI::Range(0, 1 << 30));
  app.add_option("--temperature", sc.temperature, "0 = greedy (argmax)")
      ->check(CLI::Range(0.0f, 100.0f));
  app.add_option("--top-p", sc.top_p, "nucleus sampling mass (official default 0.85)")
      ->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--top-k", sc.top_k, "keep only the k most likely tokens (0 = off)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--presence-penalty", sc.presence_penalty, "subtracted once a token appeared");
  app.add_option("--frequency-penalty", sc.frequency_penalty, "subtracted per occurrence");
  app.add_option("--penalty-decay", sc.penalty_decay, "occurrence decay per token (official 0.996)")
      ->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--seed", sc.seed, "random seed: the same seed gives the same text");
  app.add_option("--stop", stops, "stop before this string (repeatable)");
  bool ignore_eos = false;
  app.add_flag("--ignore-eos", ignore_eos,
               "never sample token 0 (end of document): generate exactly -n tokens");
  return run(app, argc, argv, [&] {
    if (Status s = use_default_model(model); !s) return fail(s.error());
    if (Status v = validate_sampler_config(sc); !v) {
      std::cerr << "wkv generate: error: " << v.error().message << "\n" << app.help();
      return kExitUsage;
    }
    kernels::set_threads(static_cast<size_t>(threads));
    auto m = load_model_file(model, adapters);
    if (!m) return fail(m.error());
    Model& net = **m;
    auto tok = make_model_tokenizer(to, net, model);
    if (!tok) return fail(tok.error());
    std::vector<int32_t> ids = (*tok)->encode(prompt);
    // Ids the model has but the tokenizer cannot decode (World: 65530..65535) are never sampled.
    for (int32_t id = (*tok)->vocab_size(); id < net.hparams().vocab_size; ++id)
      sc.banned.push_back(id);
    if (ignore_eos) sc.banned.push_back(0);
    Sampler sampler(sc);
    State state = net.new_state();
    GenerateOptions opt;
    opt.max_tokens = n;
    opt.stop = stops;
    auto st = generate(net, **tok, sampler, state, ids, opt, [](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    if (!st) return fail(st.error());
    std::fputc('\n', stdout);
    const char* reason = st->reason == StopReason::length        ? "length"
                         : st->reason == StopReason::stop_string ? "stop string"
                                                                 : "end of text";
    std::fprintf(stderr,
                 "wkv: prompt %d tokens, %.1f tok/s; generated %d tokens, %.1f tok/s; stop: %s\n",
                 st->prompt_tokens, st->prompt_tokens / std::max(st->prompt_seconds, 1e-9),
                 st->generated_tokens, st->generated_tokens / std::max(st->generate_seconds, 1e-9),
                 reason);
    return 0;
  });
}

WKV_COMMAND("generate", "generate text from a prompt, streamed to stdout", cmd_generate);

}  // namespace wkv::cli
