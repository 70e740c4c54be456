// The HTTP server in-process on an ephemeral 127.0.0.1 port, driven by httplib's client (and a
// raw socket for a client that vanishes), plus `wkv serve` spawned for SIGTERM and the
// comparison with `wkv generate`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "formats/formats.hpp"
#include "runtime/generate.hpp"
#include "runtime/scheduler.hpp"
#include "server/openai.hpp"
#include "server/server.hpp"
#include "../runtime/greedy_check.hpp"
#include "test_util.hpp"

namespace wkv::server {
namespace {

using nlohmann::json;
const std::string kModel = "models/rwkvcpp_tiny_7v0_834K/model.pth";

std::unique_ptr<Model> tiny_model() {
  auto t = load_tensors(test::testdata(kModel));
  EXPECT_TRUE(bool(t));
  auto m = load_model(std::move(*t), "tiny");
  EXPECT_TRUE(bool(m));
  return std::move(*m);
}

// A server on its own thread for one test.
struct Running {
  std::unique_ptr<Model> model = tiny_model();
  std::unique_ptr<Tokenizer> tok = make_byte_tokenizer();
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<HttpServer> srv;
  std::thread th;
  int port = 0;
  explicit Running(SchedulerOptions so = {}, ServerOptions o = {}) {
    signal(SIGPIPE, SIG_IGN);
    sched = std::make_unique<Scheduler>(*model, *tok, so);
    o.port = 0;
    o.model_name = "tiny";
    if (o.http_threads == 0) o.http_threads = 32;
    srv = std::make_unique<HttpServer>(*sched, *tok, o);
    auto p = srv->bind();
    EXPECT_TRUE(bool(p));
    port = *p;
    th = std::thread([this] { srv->run(); });
  }
  ~Running() {
    srv->stop();
    th.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
  std::string greedy_alone(const std::string& prompt, int n) {
    SamplerConfig sc;
    sc.temperature = 0;
    Sampler s(sc);
    State st = model->new_state();
    GenerateOptions g;
    g.max_tokens = n;
    std::string out;
    auto r = generate(*model, *tok, s, st, tok->encode(prompt), g,
                      [&](const std::string& t) { out += t; });
    EXPECT_TRUE(bool(r));
    return out;
  }
};

json post(httplib::Client& c, const std::string& path, const json& body, int* status) {
  auto r = c.Post(path, body.dump(), "application/json");
  if (!r) {
    *status = -1;
    return json();
  }
  *status = r->status;
  return json::parse(r->body, nullptr, false);
}

// Server-sent events of a whole streamed body: the JSON of every data line, and whether the
// stream ended with [DONE].
std::vector<json> sse(const std::string& body, bool* done) {
  std::vector<json> out;
  *done = false;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
    std::string data = ev.substr(6);
    if (data == "[DONE]") {
      *done = true;
      EXPECT_EQ(pos, body.size());
    } else {
      out.push_back(json::parse(data));
    }
  }
  return out;
}

void expect_error(const json& j, int status, int want) {
  EXPECT_EQ(status, want) << j.dump();
  ASSERT_TRUE(j.is_object()) << j.dump();
  ASSERT_TRUE(j.contains("error")) << j.dump();
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param"));
  EXPECT_TRUE(e.contains("code"));
}

TEST(Server, HealthModelsMetricsAndUnknownPaths) {
  Running s;
  auto c = s.client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  json mj = json::parse(m->body);
  EXPECT_EQ(mj["object"], "list");
  EXPECT_EQ(mj["data"][0]["id"], "tiny");
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<title>wkv chat</title>"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  auto js = c.Get("/app.js");
  ASSERT_TRUE(js);
  EXPECT_NE(js->body.find("/v1/chat/completions"), std::string::npos);
  auto nf = c.Get("/v1/nothing");
  ASSERT_TRUE(nf);
  expect_error(json::parse(nf->body, nullptr, false), nf->status, 404);
  auto met = c.Get("/metrics");
  ASSERT_TRUE(met);
  for (const char* k : {"wkv_http_requests_total{endpoint=\"/v1/models\"} 1", "wkv_queue_length 0",
                        "wkv_cache_hits_total 0", "wkv_batch_size", "wkv_generated_tokens_total 0"})
    EXPECT_NE(met->body.find(k), std::string::npos) << k << "\n" << met->body;
}

TEST(Server, GreedyCompletionEqualsGenerateAlsoWith16Concurrent) {
  SchedulerOptions so;
  so.max_active = 16;
  so.prompt_chunk = 7;
  Running s(so);
  std::vector<std::string> prompts;
  for (int i = 0; i < 16; ++i) prompts.push_back("Request " + std::to_string(i) + ": once upon a time");
  std::vector<std::string> got(16);
  std::vector<json> usage(16);
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; ++i)
    ts.emplace_back([&, i] {
      auto c = s.client();
      int st = 0;
      json j = post(c, "/v1/completions",
                    {{"model", "tiny"}, {"prompt", prompts[i]}, {"max_tokens", 30}, {"temperature", 0}},
                    &st);
      EXPECT_EQ(st, 200) << j.dump();
      if (st != 200) return;
      got[i] = j["choices"][0]["text"];
      usage[i] = j["usage"];
      EXPECT_EQ(j["object"], "text_completion");
      EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < 16; ++i) {
    auto ref = test::greedy_alone(*s.model, s.tok->encode(prompts[i]), 30);
    EXPECT_EQ(test::greedy_mismatch(ref, s.tok->encode(got[i])), "") << prompts[i];
    EXPECT_EQ(usage[i]["prompt_tokens"], prompts[i].size());
    EXPECT_EQ(usage[i]["completion_tokens"], 30);
    EXPECT_EQ(usage[i]["total_tokens"], prompts[i].size() + 30);
  }
  EXPECT_GT(s.sched->stats().batch_items, s.sched->stats().steps);  // batched for real
}

TEST(Server, GreedyOutputEqualsWkvGenerateCommand) {
  Running s;
  auto c = s.client();
  const std::string prompt = "In the beginning";
  int st = 0;
  json j = post(c, "/v1/completions", {{"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}}, &st);
  ASSERT_EQ(st, 200);
  std::string cmd = std::string(WKV_EXE) + " generate -m " + test::testdata(kModel) +
                    " -p '" + prompt + "' -n 40 --temperature 0 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(f), 0);
  ASSERT_FALSE(out.empty());
  out.pop_back();  // wkv generate ends with a newline
  // Both equal the greedy decoding alone, to float tolerance (see greedy_check.hpp); on this
  // small model with few near-ties they are normally identical.
  auto ref = test::greedy_alone(*s.model, s.tok->encode(prompt), 40);
  EXPECT_EQ(test::greedy_mismatch(ref, s.tok->encode(j["choices"][0]["text"].get<std::string>())), "");
  EXPECT_EQ(test::greedy_mismatch(ref, s.tok->encode(out)), "");
  EXPECT_EQ(out, s.greedy_alone(prompt, 40));
}

TEST(Server, ChatCompletionAndStreamAgreeWithUsageAndDone) {
  Running s;
  auto c = s.client();
  json req = {{"model", "tiny"},
              {"messages", {{{"role", "system"}, {"content", "You are terse."}},
                            {{"role", "user"}, {"content", "Hello there"}}}},
              {"max_tokens", 25}, {"temperature", 0}, {"stop", {"zz"}}};
  int st = 0;
  json j = post(c, "/v1/chat/completions", req, &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  const std::string text = j["choices"][0]["message"]["content"];
  const std::string prompt = "System: You are terse.\n\nUser: Hello there\n\nAssistant:";
  EXPECT_TRUE(text.empty() || text[0] != ' ');
  EXPECT_EQ(text.find("\n\n"), std::string::npos);
  EXPECT_TRUE(j["choices"][0]["finish_reason"] == "stop" || j["choices"][0]["finish_reason"] == "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt.size());

  req["stream"] = true;
  req["stream_options"] = {{"include_usage", true}};
  auto r = c.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  bool done = false;
  auto chunks = sse(r->body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  std::string streamed;
  std::string finish;
  for (const auto& ch : chunks) {
    EXPECT_EQ(ch["object"], "chat.completion.chunk");
    EXPECT_EQ(ch["id"], chunks[0]["id"]);
    if (ch["choices"].empty()) continue;
    const auto& d = ch["choices"][0]["delta"];
    if (d.contains("content")) streamed += d["content"].get<std::string>();
    if (!ch["choices"][0]["finish_reason"].is_null()) finish = ch["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(finish, j["choices"][0]["finish_reason"]);
  const json& last = chunks.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], j["usage"]["completion_tokens"]);
  EXPECT_EQ(last["usage"]["prompt_tokens"], j["usage"]["prompt_tokens"]);

  // Completions stream: text chunks, and no usage chunk unless asked.
  auto r2 = c.Post("/v1/completions",
                   json{{"prompt", "abc"}, {"max_tokens", 10}, {"temperature", 0}, {"stream", true}}.dump(),
                   "application/json");
  ASSERT_TRUE(r2);
  auto cs = sse(r2->body, &done);
  EXPECT_TRUE(done);
  std::string t2;
  for (const auto& ch : cs) {
    EXPECT_EQ(ch["object"], "text_completion");
    ASSERT_EQ(ch["choices"].size(), 1u);
    t2 += ch["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(test::greedy_mismatch(test::greedy_alone(*s.model, s.tok->encode("abc"), 10), s.tok->encode(t2)), "");
  EXPECT_EQ(cs.back()["choices"][0]["finish_reason"], "length");
}

TEST(Server, BadInputGetsOpenAiErrors) {
  ServerOptions o;
  o.max_body_bytes = 64 * 1024;
  o.max_prompt_tokens = 1000;
  o.max_tokens_limit = 500;
  Running s({}, o);
  auto c = s.client();
  auto raw = [&](const std::string& path, const std::string& body, int want) {
    auto r = c.Post(path, body, "application/json");
    ASSERT_TRUE(r) << body;
    expect_error(json::parse(r->body, nullptr, false), r->status, want);
  };
  raw("/v1/chat/completions", "{\"messages\": [", 400);
  raw("/v1/completions", "not json", 400);
  raw("/v1/completions", "[1,2]", 400);
  raw("/v1/completions", std::string("{\"prompt\": \"ab\xff\xfe\"}"), 400);  // invalid UTF-8
  raw("/v1/completions", "{\"prompt\": \"" + std::string(100 * 1024, 'a') + "\"}", 413);
  raw("/v1/completions", "{\"prompt\": \"" + std::string(2000, 'a') + "\"}", 400);
  const json chat = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto with = [&](json j, const char* k, json v) {
    j[k] = std::move(v);
    return j;
  };
  struct Case {
    json body;
    std::string param;
  };
  std::vector<Case> cases = {
      {with(chat, "temperature", "hot"), "temperature"},
      {with(chat, "temperature", 3), "temperature"},
      {with(chat, "top_p", -0.1), "top_p"},
      {with(chat, "max_tokens", -1), "max_tokens"},
      {with(chat, "max_tokens", 100000), "max_tokens"},
      {with(chat, "max_tokens", 1.5), "max_tokens"},
      {with(chat, "stop", 5), "stop"},
      {with(chat, "stop", json::array({"a", 1})), "stop"},
      {with(chat, "n", 2), "n"},
      {with(chat, "seed", "x"), "seed"},
      {with(chat, "stream", "yes"), "stream"},
      {with(chat, "logit_bias", {{"abc", 1}}), "logit_bias"},
      {with(chat, "logit_bias", {{"999", 1}}), "logit_bias"},
      {with(chat, "logit_bias", {{"5", 1000}}), "logit_bias"},
      {with(chat, "stream_options", {{"include_usage", true}}), "stream_options"},
      {with(chat, "frobnicate", 1), "frobnicate"},
      {with(chat, "logprobs", true), "logprobs"},
      {with(chat, "model", 3), "model"},
      {json{{"messages", json::array()}}, "messages"},
      {json{{"messages", "hi"}}, "messages"},
      {json{{"messages", {{{"role", "user"}, {"content", "  \n "}}}}}, "messages"},
      {json{{"messages", {{{"role", "alien"}, {"content", "x"}}}}}, "messages"},
      {json{{"messages", {{{"role", "user"}, {"content", 5}}}}}, "messages[0].content"},
      {json{{"model", "tiny"}}, "messages"},
  };
  for (const auto& cs : cases) {
    int st = 0;
    json j = post(c, "/v1/chat/completions", cs.body, &st);
    expect_error(j, st, 400);
    if (j.contains("error")) {
      EXPECT_EQ(j["error"]["param"], cs.param) << cs.body.dump();
    }
  }
  int st = 0;
  json j = post(c, "/v1/completions", {{"prompt", json::array({1, 2, 300})}}, &st);
  expect_error(j, st, 400);
  j = post(c, "/v1/completions", {{"prompt", ""}}, &st);
  expect_error(j, st, 400);
  j = post(c, "/v1/embeddings", {{"input", json::array()}}, &st);
  expect_error(j, st, 400);
  // Token-id prompts and logit_bias work when valid.
  j = post(c, "/v1/completions",
           {{"prompt", json::array({72, 105})}, {"max_tokens", 3}, {"temperature", 0},
            {"logit_bias", {{"120", 100}}}},
           &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["choices"][0]["text"], "xxx");
  // The server is still healthy.
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST(Server, ApiKeyIsRequiredWhenSet) {
  ServerOptions o;
  o.api_key = "sekret";
  Running s({}, o);
  auto c = s.client();
  auto r = c.Get("/v1/models");
  ASSERT_TRUE(r);
  expect_error(json::parse(r->body), r->status, 401);
  httplib::Headers bad = {{"Authorization", "Bearer wrong"}};
  r = c.Get("/v1/models", bad);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  httplib::Headers good = {{"Authorization", "Bearer sekret"}};
  r = c.Get("/v1/models", good);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/health");  // public: load balancers probe it
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(Server, EmbeddingsFloatAndBase64) {
  Running s;
  auto c = s.client();
  int st = 0;
  json j = post(c, "/v1/embeddings", {{"model", "tiny"}, {"input", {"first text", "second"}}}, &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 2u);
  std::vector<float> e0 = j["data"][0]["embedding"];
  EXPECT_EQ(e0.size(), static_cast<size_t>(s.model->hparams().n_embd));
  double n2 = 0;
  for (float x : e0) n2 += double(x) * x;
  EXPECT_NEAR(n2, 1.0, 1e-4);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 16);
  json b = post(c, "/v1/embeddings", {{"input", "first text"}, {"encoding_format", "base64"}}, &st);
  ASSERT_EQ(st, 200);
  std::string b64 = b["data"][0]["embedding"];
  ASSERT_EQ(b64.size(), (e0.size() * 4 + 2) / 3 * 4);
  // Decode and compare: batching may change float rounding, nothing more.
  std::vector<unsigned char> bytes;
  const std::string al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : b64) {
    if (ch == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(al.find(ch));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
    }
  }
  ASSERT_EQ(bytes.size(), e0.size() * 4);
  std::vector<float> e1(e0.size());
  std::memcpy(e1.data(), bytes.data(), bytes.size());
  EXPECT_LT(test::max_abs_diff(e0, e1), 1e-5f);
  EXPECT_EQ(base64_encode("foobar", 6), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fooba", 5), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foob", 4), "Zm9vYg==");
}

TEST(Server, SharedPrefixIsTakenFromTheCache) {
  Running s;
  auto c = s.client();
  std::string system;
  for (int i = 0; i < 20; ++i) system += "Answer politely and precisely. ";
  auto ask = [&](const std::string& q) {
    int st = 0;
    json j = post(c, "/v1/chat/completions",
                  {{"messages", {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", q}}}},
                   {"max_tokens", 5}, {"temperature", 0}},
                  &st);
    EXPECT_EQ(st, 200);
    return j;
  };
  json a = ask("What is one?");
  EXPECT_EQ(a["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  json b = ask("What is two?");
  const int sys_tokens = static_cast<int>(("System: " + system).size() - 1 + 2);  // cleaned + "\n\n"
  EXPECT_GE(b["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), sys_tokens - 1);
  auto met = c.Get("/metrics");
  ASSERT_TRUE(met);
  EXPECT_NE(met->body.find("wkv_cache_hits_total 1"), std::string::npos) << met->body;
  EXPECT_NE(met->body.find("wkv_cache_tokens_skipped_total " +
                           b["usage"]["prompt_tokens_details"]["cached_tokens"].dump()),
            std::string::npos);
}

TEST(Server, FullQueueGets429) {
  SchedulerOptions so;
  so.max_active = 1;
  so.max_queue = 0;
  Running s(so);
  std::atomic<bool> stop{false};
  std::thread longreq([&] {
    auto c = s.client();
    int st = 0;
    post(c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 4000}, {"temperature", 0}}, &st);
  });
  while (s.sched->stats().active == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto c = s.client();
  int st = 0;
  json j = post(c, "/v1/completions", {{"prompt", "y"}, {"max_tokens", 2}}, &st);
  expect_error(j, st, 429);
  longreq.join();
  auto met = c.Get("/metrics");
  EXPECT_NE(met->body.find("wkv_requests_rejected_total 1"), std::string::npos);
}

int connect_local(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

TEST(Server, ClientVanishingMidStreamFreesItsSlot) {
  Running s;
  for (int round = 0; round < 3; ++round) {
    int fd = connect_local(s.port);
    // End of text banned: a sequence that sampled token 0 would end by itself, not be cancelled.
    std::string body = json{{"prompt", "Go on"}, {"max_tokens", 4000}, {"stream", true},
                            {"logit_bias", {{"0", -100}}}}.dump();
    std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    char buf[512];
    ASSERT_GT(read(fd, buf, sizeof buf), 0);  // the stream started
    close(fd);
  }
  // Until every request has ended: a request still queued (not yet active) when the last
  // client closes counts as neither, so waiting for active == 0 alone read the stats too
  // early on a loaded machine (cancelled 0, generated 0).
  const auto ended = [&] {
    const auto st = s.sched->stats();
    return st.active == 0 && st.queued == 0 && st.cancelled + st.completed >= st.submitted;
  };
  auto t0 = std::chrono::steady_clock::now();
  while (!ended() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto st = s.sched->stats();
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.cancelled, 3u);
  EXPECT_LT(st.generated_tokens, 3u * 4000u);
}

TEST(Server, TwoHundredConcurrentConnections) {
  SchedulerOptions so;
  so.max_active = 8;
  so.max_queue = 256;
  ServerOptions o;
  o.http_threads = 64;
  Running s(so, o);
  std::atomic<int> ok{0}, other{0};
  std::mutex err_mu;
  std::vector<std::string> errors;
  std::vector<std::thread> ts;
  for (int i = 0; i < 200; ++i)
    ts.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", s.port);
      c.set_read_timeout(60, 0);
      c.set_connection_timeout(30, 0);
      httplib::Result r = i % 2 ? c.Get("/health")
                                : c.Post("/v1/completions",
                                         json{{"prompt", "n" + std::to_string(i)}, {"max_tokens", 3}}.dump(),
                                         "application/json");
      if (r && r->status == 200) {
        ++ok;
      } else {
        ++other;
        std::lock_guard l(err_mu);
        if (errors.size() < 5) errors.push_back(r ? std::to_string(r->status) : httplib::to_string(r.error()));
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(other.load(), 0);
  for (const auto& e : errors) ADD_FAILURE() << e;
}

TEST(Server, RequestTimeoutEndsGeneration) {
  ServerOptions o;
  o.timeout_s = 0.3;
  Running s({}, o);
  auto c = s.client();
  int st = 0;
  json j = post(c, "/v1/completions",
                {{"prompt", "x"}, {"max_tokens", 4000}, {"logit_bias", {{"0", -100}}}}, &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_LT(j["usage"]["completion_tokens"].get<int>(), 4000);
}

// `wkv serve` as a process: prints its port, serves, and on SIGTERM finishes the stream in
// flight, then exits 0.
TEST(Server, WkvServeDrainsOnSigterm) {
  int err_pipe[2];
  ASSERT_EQ(pipe(err_pipe), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(err_pipe[1], 2);
    close(err_pipe[0]);
    std::string m = test::testdata(kModel);
    execl(WKV_EXE, WKV_EXE, "serve", "-m", m.c_str(), "--port", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(err_pipe[1]);
  std::string err;
  int port = 0;
  char buf[256];
  while (port == 0) {
    ssize_t n = read(err_pipe[0], buf, sizeof buf);
    ASSERT_GT(n, 0) << err;
    err.append(buf, static_cast<size_t>(n));
    size_t p = err.find("http://127.0.0.1:");
    if (p != std::string::npos && err.find(' ', p + 17) != std::string::npos)
      port = std::stoi(err.substr(p + 17));
  }
  std::string streamed;
  std::atomic<bool> client_done{false};
  std::thread client([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    auto r = c.Post("/v1/completions",
                    json{{"prompt", "x"}, {"max_tokens", 300}, {"stream", true}, {"temperature", 0}}.dump(),
                    "application/json");
    if (r) streamed = r->body;
    client_done = true;
  });
  // Wait until it generates (or has already finished), then ask it to stop. On a loaded
  // 2-CPU machine (ctest -j2 beside other builds) the request can take seconds to start: wait
  // up to 60 s, so that SIGTERM does not land before the stream it must drain exists.
  httplib::Client c("127.0.0.1", port);
  for (int i = 0; i < 6000 && !client_done; ++i) {
    auto m = c.Get("/metrics");
    if (m && m->body.find("wkv_active_sequences 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGTERM);
  client.join();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(err_pipe[0]);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  bool done = false;
  auto chunks = sse(streamed, &done);
  EXPECT_TRUE(done);  // the request in flight was finished, not cut
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "length");
}

}  // namespace
}  // namespace wkv::server
