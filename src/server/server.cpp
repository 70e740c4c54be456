#include "server/server.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/openai.hpp"
#include "server/web_assets.hpp"

namespace wkv::server {

using nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

// Model output may end inside a UTF-8 character; never throw on it.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Events of one request, from the scheduler's worker to the HTTP handler.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> q;
};

std::string finish_reason(FinishReason r) {
  return r == FinishReason::length || r == FinishReason::timeout ? "length" : "stop";
}

}  // namespace

struct HttpServer::Impl {
  Scheduler& sched;
  const Tokenizer& tok;
  ServerOptions opt;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  std::once_flag stop_once;
  // Streamed responses not yet fully written: stop() waits for them, because httplib stops
  // calling a chunked content provider once the server is stopping, which would cut the final
  // chunks of a request the scheduler has already finished.
  std::mutex streams_mu;
  std::condition_variable streams_cv;
  int open_streams = 0;
  std::atomic<uint64_t> next_id{1};
  std::mutex metrics_mu;
  std::map<std::string, uint64_t> requests;   // endpoint -> count
  std::map<int, uint64_t> responses;          // status -> count
  const int vocab;
  const int64_t created = static_cast<int64_t>(std::time(nullptr));

  Impl(Scheduler& s, const Tokenizer& t, ServerOptions o)
      : sched(s), tok(t), opt(std::move(o)), vocab(s.model().hparams().vocab_size) {}

  void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(dump(error_body(e)), "application/json");
  }

  void count(const std::string& endpoint) {
    std::lock_guard l(metrics_mu);
    ++requests[endpoint];
  }

  // Wraps a handler: ApiError and any other exception become OpenAI-style errors.
  httplib::Server::Handler wrap(const std::string& endpoint,
                                std::function<void(const httplib::Request&, httplib::Response&)> f) {
    return [this, endpoint, f](const httplib::Request& req, httplib::Response& res) {
      count(endpoint);
      try {
        f(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const std::exception& e) {
        send_error(res, ApiError{500, std::string("internal error: ") + e.what(), "server_error", "", ""});
      }
    };
  }

  json parse_body(const httplib::Request& req) {
    if (stopping) throw ApiError{503, "the server is shutting down", "server_error", "", "shutting_down"};
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded())
      throw ApiError{400, "the request body is not valid JSON (or not valid UTF-8)",
                     "invalid_request_error", "", "invalid_json"};
    return body;
  }

  uint64_t submit(Request& r, std::shared_ptr<Channel> ch) {
    r.deadline = clock_type::now() + std::chrono::milliseconds(static_cast<int64_t>(opt.timeout_s * 1000));
    r.on_event = [ch](Event&& e) {
      std::lock_guard l(ch->mu);
      ch->q.push_back(std::move(e));
      ch->cv.notify_all();
    };
    Submitted s = sched.submit(std::move(r));
    switch (s.status) {
      case Submitted::Status::ok: return s.id;
      case Submitted::Status::queue_full:
        throw ApiError{429, s.message, "rate_limit_error", "", "queue_full"};
      case Submitted::Status::shutting_down:
        throw ApiError{503, s.message, "server_error", "", "shutting_down"};
      case Submitted::Status::invalid: throw ApiError{400, s.message, "invalid_request_error", "", ""};
    }
    return 0;
  }

  static Event wait_event(Channel& ch) {
    std::unique_lock l(ch.mu);
    ch.cv.wait(l, [&] { return !ch.q.empty(); });
    Event e = std::move(ch.q.front());
    ch.q.pop_front();
    return e;
  }

  json usage(const Event& done) {
    return json{{"prompt_tokens", done.prompt_tokens},
                {"completion_tokens", done.completion_tokens},
                {"total_tokens", done.prompt_tokens + done.completion_tokens},
                {"prompt_tokens_details", {{"cached_tokens", done.cached_tokens}}}};
  }

  std::string model_name(const json& body) const {
    return body.contains("model") && body["model"].is_string() ? body["model"].get<std::string>()
                                                              : opt.model_name;
  }

  // The chat reply starts with a space (the prompt ends in "Assistant:"): strip it.
  struct LeadTrim {
    bool started = false;
    std::string operator()(std::string s) {
      if (started) return s;
      size_t b = 0;
      while (b < s.size() && (s[b] == ' ' || s[b] == '\n')) ++b;
      s.erase(0, b);
      if (!s.empty()) started = true;
      return s;
    }
  };

  void generation(const httplib::Request& hreq, httplib::Response& res, bool chat) {
    json body = parse_body(hreq);
    GenerationRequest g = parse_generation(body, chat, tok, vocab, opt);
    const std::string model = model_name(body);
    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(created) + "-" +
                           std::to_string(next_id++);
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    auto ch = std::make_shared<Channel>();
    const uint64_t rid = submit(g.req, ch);

    if (!g.stream) {
      std::string text;
      LeadTrim trim;
      Event done;
      while (true) {
        Event e = wait_event(*ch);
        text += chat ? trim(e.text) : e.text;
        if (e.done) {
          done = std::move(e);
          break;
        }
      }
      json choice = {{"index", 0}, {"finish_reason", finish_reason(done.reason)}};
      if (chat) {
        choice["message"] = {{"role", "assistant"}, {"content", text}};
        choice["logprobs"] = nullptr;
      } else {
        choice["text"] = text;
        choice["logprobs"] = nullptr;
      }
      json out = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"},
                  {"created", now}, {"model", model}, {"choices", json::array({choice})},
                  {"usage", usage(done)}, {"system_fingerprint", "wkv"}};
      res.set_content(dump(out), "application/json");
      return;
    }

    struct StreamState {
      bool finished = false;
      bool sent_role = false;
      LeadTrim trim;
    };
    auto st = std::make_shared<StreamState>();
    const bool include_usage = g.include_usage;
    auto chunk = [id, now, model, chat](const json& choices) {
      return json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
                  {"created", now}, {"model", model}, {"system_fingerprint", "wkv"},
                  {"choices", choices}};
    };
    auto choice = [chat](const std::string& text, const json& finish) {
      if (chat) return json{{"index", 0}, {"delta", text.empty() ? json::object() : json{{"content", text}}},
                            {"logprobs", nullptr}, {"finish_reason", finish}};
      return json{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}};
    };
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    {
      std::lock_guard l(streams_mu);
      ++open_streams;
    }
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, ch, st, rid, chat, include_usage, chunk, choice](size_t, httplib::DataSink& sink) {
          auto send = [&](const std::string& data) {
            std::string msg = "data: " + data + "\n\n";
            if (!sink.write(msg.data(), msg.size())) {
              sched.cancel(rid);  // the client is gone: free its slot now
              return false;
            }
            return true;
          };
          if (chat && !st->sent_role) {
            st->sent_role = true;
            json c = {{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                      {"logprobs", nullptr}, {"finish_reason", nullptr}};
            if (!send(dump(chunk(json::array({c}))))) return false;
          }
          std::deque<Event> evs;
          {
            std::unique_lock l(ch->mu);
            ch->cv.wait_for(l, std::chrono::milliseconds(200), [&] { return !ch->q.empty(); });
            evs.swap(ch->q);
          }
          std::string text;
          for (Event& e : evs) {
            text += chat ? st->trim(e.text) : e.text;
            if (!e.done) continue;
            if (!text.empty() && !send(dump(chunk(json::array({choice(text, nullptr)}))))) return false;
            if (!send(dump(chunk(json::array({choice("", finish_reason(e.reason))})))))
              return false;
            if (include_usage) {
              json u = chunk(json::array());
              u["usage"] = usage(e);
              if (!send(dump(u))) return false;
            }
            if (!send("[DONE]")) return false;
            st->finished = true;
            sink.done();
            return true;
          }
          if (!text.empty() && !send(dump(chunk(json::array({choice(text, nullptr)}))))) return false;
          return true;
        },
        [this, st, rid](bool) {  // runs once the response is over, whatever ended it
          if (!st->finished) sched.cancel(rid);
          std::lock_guard l(streams_mu);
          --open_streams;
          streams_cv.notify_all();
        });
  }

  void embeddings(const httplib::Request& hreq, httplib::Response& res) {
    json body = parse_body(hreq);
    EmbeddingInputs in = parse_embeddings(body, tok, vocab, opt);
    std::vector<std::pair<uint64_t, std::shared_ptr<Channel>>> pending;
    for (auto& ids : in.inputs) {
      Request r;
      r.prompt = std::move(ids);
      r.embedding = true;
      r.max_tokens = 0;
      auto ch = std::make_shared<Channel>();
      try {
        pending.emplace_back(submit(r, ch), ch);
      } catch (...) {
        for (auto& [rid, c] : pending) sched.cancel(rid);
        for (auto& [rid, c] : pending)
          while (!wait_event(*c).done) {
          }
        throw;
      }
    }
    json data = json::array();
    int tokens = 0;
    for (size_t i = 0; i < pending.size(); ++i) {
      Event e;
      while (!(e = wait_event(*pending[i].second)).done) {
      }
      tokens += e.prompt_tokens;
      if (e.embedding.empty())
        throw ApiError{500, "embedding was not computed (" + std::string(finish_reason_name(e.reason)) + ")",
                       "server_error", "", ""};
      json item = {{"object", "embedding"}, {"index", i}};
      if (in.base64) item["embedding"] = base64_encode(e.embedding.data(), e.embedding.size() * sizeof(float));
      else item["embedding"] = e.embedding;
      data.push_back(item);
    }
    json out = {{"object", "list"}, {"data", data}, {"model", model_name(body)},
                {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
    res.set_content(dump(out), "application/json");
  }

  std::string metrics() {
    SchedulerStats s = sched.stats();
    std::ostringstream o;
    auto metric = [&](const char* name, const char* type, const char* help, auto value) {
      o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
        << name << " " << value << "\n";
    };
    {
      std::lock_guard l(metrics_mu);
      o << "# HELP wkv_http_requests_total HTTP requests by endpoint.\n"
           "# TYPE wkv_http_requests_total counter\n";
      for (auto& [k, v] : requests) o << "wkv_http_requests_total{endpoint=\"" << k << "\"} " << v << "\n";
    }
    metric("wkv_requests_submitted_total", "counter", "Generation/embedding requests accepted.", s.submitted);
    metric("wkv_requests_rejected_total", "counter", "Requests rejected because the queue was full.", s.rejected);
    metric("wkv_requests_completed_total", "counter", "Requests finished.", s.completed);
    metric("wkv_requests_cancelled_total", "counter", "Requests cancelled (client gone, shutdown).", s.cancelled);
    metric("wkv_prompt_tokens_total", "counter", "Prompt tokens processed (cache hits excluded).", s.prompt_tokens);
    metric("wkv_generated_tokens_total", "counter", "Tokens generated.", s.generated_tokens);
    metric("wkv_batch_steps_total", "counter", "Batched forward steps.", s.steps);
    metric("wkv_batch_items_total", "counter", "Sequences advanced, summed over steps.", s.batch_items);
    metric("wkv_batch_size", "gauge", "Sequences in the last batched step.", s.last_batch_size);
    metric("wkv_active_sequences", "gauge", "Sequences being processed.", s.active);
    metric("wkv_queue_length", "gauge", "Requests waiting for a slot.", s.queued);
    metric("wkv_cache_lookups_total", "counter", "Prefix-state cache lookups.", s.cache.lookups);
    metric("wkv_cache_hits_total", "counter", "Prefix-state cache hits.", s.cache.hits);
    metric("wkv_cache_tokens_skipped_total", "counter", "Prompt tokens skipped thanks to the cache.", s.cache.tokens_skipped);
    metric("wkv_cache_evictions_total", "counter", "Prefix-state cache evictions.", s.cache.evictions);
    metric("wkv_cache_entries", "gauge", "States in the prefix cache.", s.cache.entries);
    metric("wkv_cache_bytes", "gauge", "Bytes held by the prefix cache.", s.cache.bytes);
    metric("wkv_cache_budget_bytes", "gauge", "The prefix cache's byte budget.", s.cache.budget_bytes);
    return o.str();
  }

  void routes() {
    http.set_payload_max_length(opt.max_body_bytes);
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    const int threads = opt.http_threads > 0 ? opt.http_threads : 64;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Access-Control-Allow-Origin", "*");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
      const bool guarded = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
      if (guarded && !opt.api_key.empty() &&
          req.get_header_value("Authorization") != "Bearer " + opt.api_key) {
        send_error(res, ApiError{401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                                 "invalid_request_error", "", "invalid_api_key"});
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty() || res.is_chunked_content_provider_)
        return httplib::Server::HandlerResponse::Unhandled;
      std::string msg = res.status == 404   ? "no such endpoint"
                        : res.status == 413 ? "the request body is larger than " +
                                                  std::to_string(opt.max_body_bytes) + " bytes"
                        : res.status == 405 ? "method not allowed"
                                            : "bad request";
      send_error(res, ApiError{res.status, msg, "invalid_request_error", "", ""});
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_logger([this](const httplib::Request&, const httplib::Response& res) {
      std::lock_guard l(metrics_mu);
      ++responses[res.status];
    });
    http.Get("/health", wrap("/health", [this](const httplib::Request&, httplib::Response& res) {
      auto s = sched.stats();
      res.status = stopping ? 503 : 200;
      res.set_content(dump(json{{"status", stopping ? "shutting_down" : "ok"},
                                {"active", s.active}, {"queued", s.queued}}),
                      "application/json");
    }));
    http.Get("/metrics", wrap("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    }));
    http.Get("/v1/models", wrap("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json m = {{"id", opt.model_name}, {"object", "model"}, {"created", created}, {"owned_by", "wkv"}};
      res.set_content(dump(json{{"object", "list"}, {"data", json::array({m})}}), "application/json");
    }));
    http.Post("/v1/completions", wrap("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) {
      generation(q, r, false);
    }));
    http.Post("/v1/chat/completions",
              wrap("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) {
                generation(q, r, true);
              }));
    http.Post("/v1/embeddings", wrap("/v1/embeddings", [this](const httplib::Request& q, httplib::Response& r) {
      embeddings(q, r);
    }));
    for (size_t i = 0; i < kWebAssetCount; ++i) {
      const WebAsset& a = kWebAssets[i];
      auto h = [&a](const httplib::Request&, httplib::Response& res) {
        res.set_content(reinterpret_cast<const char*>(a.data), a.size, a.mime);
      };
      http.Get(a.path, h);
      if (std::string(a.path) == "/index.html") http.Get("/", h);
    }
  }
};

// Debian's cpp-httplib 0.11.4 is a compiled library that listens with a backlog of 5, so a burst
// of connections overflows the accept queue and clients see their connection dropped. Linux lets
// listen() be called again on a listening socket to change its backlog; the socket is found as
// the listening TCP socket bound to our port.
static void raise_listen_backlog(int port) {
  for (int fd = 3; fd < 65536; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) {
      if (errno == EBADF && fd > 1024) break;
      continue;
    }
    if (!listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int p = addr.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
            : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                         : -1;
    if (p == port) listen(fd, 1024);
  }
}

HttpServer::HttpServer(Scheduler& sched, const Tokenizer& tok, ServerOptions opt)
    : impl_(std::make_unique<Impl>(sched, tok, std::move(opt))) {
  impl_->routes();
}

HttpServer::~HttpServer() { stop(); }

Expected<int> HttpServer::bind() {
  const auto& o = impl_->opt;
  int p = o.port == 0 ? impl_->http.bind_to_any_port(o.host)
                      : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (p <= 0)
    return Error{"cannot listen on " + o.host + ":" + std::to_string(o.port) +
                 " (address in use, or not a local address?)"};
  port_ = p;
  raise_listen_backlog(p);
  return p;
}

void HttpServer::run() { impl_->http.listen_after_bind(); }

void HttpServer::stop() {
  std::call_once(impl_->stop_once, [this] {
    impl_->stopping = true;
    impl_->sched.drain();
    {  // the streams of the drained requests finish writing (bounded: a client that stopped
       // reading must not hold the shutdown forever)
      std::unique_lock l(impl_->streams_mu);
      impl_->streams_cv.wait_for(l, std::chrono::seconds(30),
                                 [this] { return impl_->open_streams == 0; });
    }
    impl_->http.stop();
  });
}

}  // namespace wkv::server
