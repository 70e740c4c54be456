#include "server/openai.hpp"

#include <cmath>
#include <random>
#include <set>

#include "runtime/chat_template.hpp"

namespace wkv::server {

using nlohmann::json;

json error_body(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", err}};
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) {
  throw ApiError{400, msg, "invalid_request_error", param, ""};
}

void check_known(const json& body, const std::set<std::string>& known) {
  for (auto it = body.begin(); it != body.end(); ++it)
    if (!known.count(it.key()))
      bad(it.key(), "unknown field '" + it.key() + "' (wkv does not support it)");
}

bool present(const json& b, const char* k) { return b.contains(k) && !b[k].is_null(); }

double number(const json& b, const char* k, double lo, double hi) {
  const json& v = b[k];
  if (!v.is_number()) bad(k, std::string(k) + " must be a number");
  double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(k, std::string(k) + " must be between " + json(lo).dump() + " and " + json(hi).dump());
  return x;
}

int64_t integer(const json& b, const char* k, int64_t lo, int64_t hi) {
  const json& v = b[k];
  if (!v.is_number_integer()) bad(k, std::string(k) + " must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    bad(k, std::string(k) + " is out of range");
  int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    bad(k, std::string(k) + " must be between " + std::to_string(lo) + " and " +
               std::to_string(hi));
  return x;
}

bool boolean(const json& b, const char* k) {
  if (!b[k].is_boolean()) bad(k, std::string(k) + " must be true or false");
  return b[k].get<bool>();
}

// A prompt: a string, one string in a list, token ids, or one list of token ids.
std::vector<int32_t> prompt_tokens(const json& v, const char* param, const Tokenizer& tok,
                                   int vocab) {
  if (v.is_string()) return tok.encode(v.get<std::string>());
  if (v.is_array() && v.size() == 1 && (v[0].is_string() || v[0].is_array()))
    return prompt_tokens(v[0], param, tok, vocab);
  if (v.is_array() && !v.empty()) {
    std::vector<int32_t> ids;
    for (const auto& x : v) {
      if (!x.is_number_integer())
        bad(param, std::string(param) +
                       " must be a string, a list of one string, or a list of token ids");
      int64_t id = x.get<int64_t>();
      if (id < 0 || id >= vocab)
        bad(param, std::string(param) + " has token id " + std::to_string(id) +
                       " outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");
      ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
  }
  if (v.is_array() && v.size() > 1)
    bad(param, std::string(param) + ": only one prompt per request is supported (n = 1)");
  bad(param, std::string(param) + " must be a string, a list of one string, or token ids");
}

std::string message_content(const json& m, size_t i) {
  const std::string p = "messages[" + std::to_string(i) + "].content";
  if (!m.contains("content") || m["content"].is_null()) return "";
  const json& c = m["content"];
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {
    std::string s;
    for (const auto& part : c) {
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
          !part.contains("text") || !part["text"].is_string())
        bad(p, p + ": only text parts ({\"type\":\"text\",\"text\":...}) are supported");
      s += part["text"].get<std::string>();
    }
    return s;
  }
  bad(p, p + " must be a string or a list of text parts");
}

}  // namespace

GenerationRequest parse_generation(const json& body, bool chat, const Tokenizer& tok,
                                   int model_vocab, const ServerOptions& opt) {
  if (!body.is_object()) bad("", "the request body must be a JSON object");
  std::set<std::string> known = {"model", "max_tokens", "temperature", "top_p", "stop", "seed",
                                 "presence_penalty", "frequency_penalty", "n", "stream",
                                 "stream_options", "logit_bias", "top_k", "penalty_decay",
                                 "user", "logprobs"};
  if (chat) {
    for (const char* k : {"messages", "max_completion_tokens", "top_logprobs", "response_format",
                          "tools", "tool_choice", "parallel_tool_calls", "store", "metadata"})
      known.insert(k);
  } else {
    for (const char* k : {"prompt", "echo", "suffix", "best_of"}) known.insert(k);
  }
  check_known(body, known);
  GenerationRequest g;
  g.chat = chat;
  Request& r = g.req;
  const int tok_vocab = std::min<int>(tok.vocab_size(), model_vocab);

  if (present(body, "model") && !body["model"].is_string()) bad("model", "model must be a string");
  // Unsupported features that change the result are errors, never silently ignored.
  if (present(body, "n") && integer(body, "n", 1, 1) != 1) bad("n", "n must be 1");
  if (present(body, "logprobs")) {
    const json& v = body["logprobs"];
    if (!(v.is_boolean() && !v.get<bool>()) && !(v.is_number_integer() && v.get<int64_t>() == 0))
      bad("logprobs", "logprobs are not supported");
  }
  if (present(body, "user") && !body["user"].is_string()) bad("user", "user must be a string");
  if (chat) {
    if (present(body, "top_logprobs")) bad("top_logprobs", "logprobs are not supported");
    if (present(body, "tools") && !(body["tools"].is_array() && body["tools"].empty()))
      bad("tools", "tools are not supported");
    if (present(body, "tool_choice") && body["tool_choice"] != "none" &&
        body["tool_choice"] != "auto")
      bad("tool_choice", "tool_choice is not supported");
    if (present(body, "response_format") &&
        !(body["response_format"].is_object() && body["response_format"].value("type", "") == "text"))
      bad("response_format", "only response_format {\"type\":\"text\"} is supported");
  } else {
    if (present(body, "echo") && boolean(body, "echo")) bad("echo", "echo is not supported");
    if (present(body, "suffix")) bad("suffix", "suffix is not supported");
    if (present(body, "best_of") && integer(body, "best_of", 1, 1) != 1)
      bad("best_of", "best_of must be 1");
  }

  // The prompt.
  if (chat) {
    if (!body.contains("messages")) bad("messages", "messages is required");
    const json& ms = body["messages"];
    if (!ms.is_array()) bad("messages", "messages must be a list");
    if (ms.empty()) bad("messages", "messages is empty: give at least one user message");
    std::vector<ChatMessage> msgs;
    for (size_t i = 0; i < ms.size(); ++i) {
      const json& m = ms[i];
      const std::string p = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) bad(p, p + " must be an object");
      if (!m.contains("role") || !m["role"].is_string()) bad(p + ".role", p + ".role must be a string");
      msgs.push_back({m["role"].get<std::string>(), message_content(m, i)});
    }
    auto pieces = chat_prompt_pieces(msgs);
    if (!pieces) bad("messages", pieces.error().message);
    for (const auto& piece : *pieces) {
      auto ids = tok.encode(piece);
      r.prompt.insert(r.prompt.end(), ids.begin(), ids.end());
      r.save_points.push_back(r.prompt.size());  // message boundaries: cache points
    }
    r.save_points.pop_back();  // the last one is the whole prompt
    r.stop.push_back(kChatStop);
  } else {
    if (!body.contains("prompt")) bad("prompt", "prompt is required");
    r.prompt = prompt_tokens(body["prompt"], "prompt", tok, model_vocab);
  }
  if (r.prompt.empty()) bad(chat ? "messages" : "prompt", "the prompt is empty");
  if (static_cast<int64_t>(r.prompt.size()) > opt.max_prompt_tokens)
    bad(chat ? "messages" : "prompt",
        "the prompt has " + std::to_string(r.prompt.size()) + " tokens; the limit is " +
            std::to_string(opt.max_prompt_tokens));

  // Generation length and stops.
  r.max_tokens = opt.default_max_tokens;
  for (const char* k : {"max_tokens", "max_completion_tokens"})
    if (present(body, k)) r.max_tokens = static_cast<int>(integer(body, k, 0, opt.max_tokens_limit));
  if (present(body, "stop")) {
    const json& s = body["stop"];
    if (s.is_string()) {
      if (!s.get<std::string>().empty()) r.stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 16) {
      for (const auto& x : s) {
        if (!x.is_string() || x.get<std::string>().empty())
          bad("stop", "stop must be a string or a list of up to 16 non-empty strings");
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      bad("stop", "stop must be a string or a list of up to 16 non-empty strings");
    }
  }

  // Sampling. Defaults: the official PIPELINE's (temperature 1, top_p 0.85).
  SamplerConfig& sc = r.sampler;
  sc.temperature = 1.0f;
  sc.top_p = 0.85f;
  if (present(body, "temperature")) sc.temperature = static_cast<float>(number(body, "temperature", 0, 2));
  if (present(body, "top_p")) sc.top_p = static_cast<float>(number(body, "top_p", 0, 1));
  if (present(body, "top_k")) sc.top_k = static_cast<int>(integer(body, "top_k", 0, 1 << 30));
  if (present(body, "presence_penalty"))
    sc.presence_penalty = static_cast<float>(number(body, "presence_penalty", -2, 2));
  if (present(body, "frequency_penalty"))
    sc.frequency_penalty = static_cast<float>(number(body, "frequency_penalty", -2, 2));
  if (present(body, "penalty_decay"))
    sc.penalty_decay = static_cast<float>(number(body, "penalty_decay", 0, 1));
  if (present(body, "seed")) {
    const json& v = body["seed"];
    if (!v.is_number_integer()) bad("seed", "seed must be an integer");
    sc.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
  } else {
    std::random_device rd;
    sc.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  if (present(body, "logit_bias")) {
    const json& lb = body["logit_bias"];
    if (!lb.is_object()) bad("logit_bias", "logit_bias must be an object {\"token id\": bias}");
    for (auto it = lb.begin(); it != lb.end(); ++it) {
      const std::string& key = it.key();
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(key, &used);
      } catch (...) {
        used = 0;
      }
      if (used != key.size() || key.empty() || id < 0 || id >= model_vocab)
        bad("logit_bias", "logit_bias key '" + key + "' is not a token id in 0.." +
                              std::to_string(model_vocab - 1));
      if (!it.value().is_number()) bad("logit_bias", "logit_bias values must be numbers");
      double b = it.value().get<double>();
      if (!std::isfinite(b) || b < -100 || b > 100)
        bad("logit_bias", "logit_bias values must be between -100 and 100");
      sc.logit_bias[static_cast<int32_t>(id)] = static_cast<float>(b);
    }
  }
  for (int32_t id = tok_vocab; id < model_vocab; ++id) sc.banned.push_back(id);
  if (Status v = validate_sampler_config(sc); !v) bad("", v.error().message);

  if (present(body, "stream")) g.stream = boolean(body, "stream");
  if (present(body, "stream_options")) {
    const json& so = body["stream_options"];
    if (!so.is_object()) bad("stream_options", "stream_options must be an object");
    for (auto it = so.begin(); it != so.end(); ++it)
      if (it.key() != "include_usage")
        bad("stream_options." + it.key(), "unknown field stream_options." + it.key());
    if (!g.stream) bad("stream_options", "stream_options is only allowed with stream: true");
    if (present(so, "include_usage")) g.include_usage = boolean(so, "include_usage");
  }
  return g;
}

EmbeddingInputs parse_embeddings(const json& body, const Tokenizer& tok, int model_vocab,
                                 const ServerOptions& opt) {
  if (!body.is_object()) bad("", "the request body must be a JSON object");
  check_known(body, {"model", "input", "encoding_format", "user", "dimensions"});
  if (present(body, "model") && !body["model"].is_string()) bad("model", "model must be a string");
  if (present(body, "dimensions")) bad("dimensions", "dimensions is not supported");
  EmbeddingInputs out;
  if (present(body, "encoding_format")) {
    const json& f = body["encoding_format"];
    if (f == "base64") out.base64 = true;
    else if (f != "float") bad("encoding_format", "encoding_format must be \"float\" or \"base64\"");
  }
  if (!body.contains("input")) bad("input", "input is required");
  const json& in = body["input"];
  std::vector<json> items;
  if (in.is_string() || (in.is_array() && !in.empty() && in[0].is_number_integer())) {
    items.push_back(in);
  } else if (in.is_array() && !in.empty()) {
    if (in.size() > 256) bad("input", "at most 256 inputs per request");
    for (const auto& x : in) items.push_back(x);
  } else {
    bad("input", "input must be a non-empty string, a list of strings, or token ids");
  }
  for (const auto& x : items) {
    std::vector<int32_t> ids;
    if (x.is_string()) ids = tok.encode(x.get<std::string>());
    else if (x.is_array()) ids = prompt_tokens(x, "input", tok, model_vocab);
    else bad("input", "input must be a string, a list of strings, or token ids");
    if (ids.empty()) bad("input", "an input is empty");
    if (static_cast<int64_t>(ids.size()) > opt.max_prompt_tokens)
      bad("input", "an input has " + std::to_string(ids.size()) + " tokens; the limit is " +
                       std::to_string(opt.max_prompt_tokens));
    out.inputs.push_back(std::move(ids));
  }
  return out;
}

std::string base64_encode(const void* data, size_t n) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i < n) {
    uint32_t v = p[i] << 16;
    if (i + 1 < n) v |= p[i + 1] << 8;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += i + 1 < n ? t[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace wkv::server
