// OpenAI request parsing: JSON bodies -> runtime Requests, with every field the clients send
// checked for type and range; anything wrong or unsupported is an ApiError (HTTP 400 with the
// offending field named in `param`).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/scheduler.hpp"
#include "server/server.hpp"
#include "tokenizer/tokenizer.hpp"

namespace wkv::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty -> null
  std::string code;   // empty -> null
};

nlohmann::json error_body(const ApiError& e);

struct GenerationRequest {
  Request req;               // prompt, sampler, max_tokens, stop, save points
  bool stream = false;
  bool include_usage = false;
  bool chat = false;
};

// Parses a /v1/completions (chat = false) or /v1/chat/completions body. Throws ApiError.
GenerationRequest parse_generation(const nlohmann::json& body, bool chat, const Tokenizer& tok,
                                   int model_vocab, const ServerOptions& opt);

// Parses a /v1/embeddings body into one token list per input. Throws ApiError.
struct EmbeddingInputs {
  std::vector<std::vector<int32_t>> inputs;
  bool base64 = false;
};
EmbeddingInputs parse_embeddings(const nlohmann::json& body, const Tokenizer& tok,
                                 int model_vocab, const ServerOptions& opt);

// Standard base64 of bytes (for encoding_format "base64": little-endian float32).
std::string base64_encode(const void* data, size_t n);

}  // namespace wkv::server
