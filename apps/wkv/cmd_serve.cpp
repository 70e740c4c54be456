// wkv serve: the OpenAI-compatible HTTP server (src/server) over the batching scheduler.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli.hpp"
#include "default_model.hpp"
#include "runtime/scheduler.hpp"
#include "server/server.hpp"

namespace wkv::cli {

namespace {

int g_signal_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
  const unsigned char c = static_cast<unsigned char>(sig);
  const int saved = errno;
  if (write(g_signal_pipe[1], &c, 1) < 0) {
  }  // nothing safe to do about a full pipe: a stop is already pending
  errno = saved;
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  CLI::App app{"Serve the model over an OpenAI-compatible HTTP API, with a chat page at /.",
               "wkv serve"};
  std::string model;
  TokenizerOptions to;
  server::ServerOptions so;
  SchedulerOptions sched_opt;
  int cache_mb = 256;
  double max_body_mb = 1;
  app.add_option("-m,--model", model, "checkpoint (.pth, .safetensors or rwkv.cpp .bin); default: the bundled model (models/)");
  to.add(app);
  // One tuned initial state for the whole server: every request's fresh state starts from it, so
  // the prefix-state cache (filled from those states only) stays correct.
  AdapterOptions adapters;
  adapters.add(app);
  app.add_option("--host", so.host, "address to listen on (default 127.0.0.1: this machine only)");
  app.add_option("--port", so.port, "TCP port (0 = any free port, printed at start)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--api-key", so.api_key,
                 "require 'Authorization: Bearer KEY' on /v1/* and /metrics");
  app.add_option("--parallel", sched_opt.max_active, "sequences generated together (batch size)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--queue", sched_opt.max_queue, "requests that may wait for a slot; more get 429")
      ->check(CLI::Range(0, 100000));
  app.add_option("--cache-mb", cache_mb, "prefix-state cache budget in MiB (0 = off)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--chunk", sched_opt.prompt_chunk, "prompt tokens per sequence per batched step")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--model-name", so.model_name, "model id reported by /v1/models (default: file name)");
  app.add_option("--max-body-mb", max_body_mb, "largest request body; larger get 413")
      ->check(CLI::Range(0.001, 1024.0));
  app.add_option("--max-prompt-tokens", so.max_prompt_tokens, "longest prompt accepted")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--max-tokens", so.max_tokens_limit, "largest max_tokens accepted")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--timeout", so.timeout_s, "seconds a request may take, queue included")
      ->check(CLI::Range(0.1, 1e7));
  return run(app, argc, argv, [&] {
    if (Status s = use_default_model(model); !s) return fail(s.error());
    // SIGTERM/SIGINT reach a handler that writes the signal number to a pipe, which one thread
    // reads. They are blocked in every thread this process starts (the HTTP threads must not see
    // EINTR) except that reader; a handler rather than sigwait because libraries may have started
    // threads before main() (OpenBLAS's pool), and a signal delivered to one of those must still
    // reach the pipe rather than kill the process.
    if (pipe(g_signal_pipe) != 0) return fail(Error{"cannot create the signal pipe"});
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a client that vanishes must not kill the server

    auto m = load_model_file(model, adapters);
    if (!m) return fail(m.error());
    Model& net = **m;
    auto tok = make_model_tokenizer(to, net, model);
    if (!tok) return fail(tok.error());
    if (so.model_name == "wkv") so.model_name = std::filesystem::path(model).filename().string();
    so.max_body_bytes = static_cast<size_t>(max_body_mb * 1024 * 1024);
    so.http_threads = sched_opt.max_active + sched_opt.max_queue + 16;
    sched_opt.cache_bytes = static_cast<size_t>(cache_mb) << 20;
  sched_opt.step_prompt_tokens = std::max(sched_opt.prompt_chunk, 1024);
    Scheduler sched(net, **tok, sched_opt);
    server::HttpServer srv(sched, **tok, so);
    auto port = srv.bind();
    if (!port) return fail(port.error());
    std::fprintf(stderr, "wkv serve: listening on http://%s:%d (model %s, parallel %d, cache %d MiB)\n",
                 so.host.c_str(), *port, so.model_name.c_str(), sched_opt.max_active, cache_mb);
    std::fflush(stderr);
    std::thread sig_thread([&] {
      pthread_sigmask(SIG_UNBLOCK, &sigs, nullptr);  // this thread takes the signals
      unsigned char sig = 0;
      while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
      }
      if (sig == 0) return;  // the server stopped on its own
      std::fprintf(stderr, "wkv serve: %s: finishing the requests in flight\n",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      srv.stop();
    });
    srv.run();
    srv.stop();
    const unsigned char wake = 0;  // wakes the reader if no signal came
    if (write(g_signal_pipe[1], &wake, 1) != 1) std::fprintf(stderr, "wkv serve: signal pipe\n");
    sig_thread.join();
    auto st = sched.stats();
    std::fprintf(stderr, "wkv serve: stopped after %llu requests, %llu tokens generated\n",
                 static_cast<unsigned long long>(st.completed),
                 static_cast<unsigned long long>(st.generated_tokens));
    return 0;
  });
}

WKV_COMMAND("serve", "OpenAI-compatible HTTP server with batching, state cache and a chat page",
            cmd_serve);

}  // namespace wkv::cli
