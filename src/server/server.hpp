// The OpenAI-compatible HTTP server over the runtime scheduler (cpp-httplib):
//   GET /v1/models, POST /v1/completions, POST /v1/chat/completions (JSON or server-sent
//   events), POST /v1/embeddings, GET /health, GET /metrics (Prometheus), GET / (chat page).
// Every error is an OpenAI-style body {"error":{"message","type","param","code"}}.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "runtime/scheduler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0 = any free port (see HttpServer::port())
  std::string api_key;             // non-empty: /v1/* and /metrics need "Authorization: Bearer KEY"
  std::string model_name = "wkv";  // the id /v1/models reports and responses carry
  size_t max_body_bytes = 1u << 20;  // larger request bodies get 413
  int max_prompt_tokens = 16384;   // longer prompts get 400
  int max_tokens_limit = 4096;     // max_tokens above this gets 400
  int default_max_tokens = 256;    // when the request gives none
  double timeout_s = 600;          // per request, from arrival (queue time included)
  int http_threads = 0;            // 0 = enough for every active + queued request, plus spare
};

class HttpServer {
 public:
  HttpServer(Scheduler& sched, const Tokenizer& tok, ServerOptions opt);
  ~HttpServer();
  // Binds host:port; returns the bound port (useful with port 0) or an Error.
  Expected<int> bind();
  // Serves until stop(); returns when the listener is closed and every handler finished.
  void run();
  // Stops accepting requests (new ones get 503), waits for the in-flight ones, closes.
  // Safe to call from any thread, also more than once.
  void stop();
  int port() const { return port_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace wkv::server
