// The C ABI of include/wkv/wkv.h over the model and formats modules.
#include "wkv/wkv.h"

#include <cstring>
#include <new>
#include <string>

#include "formats/formats.hpp"
#include "model/model.hpp"

struct wkv_model {
  std::unique_ptr<wkv::Model> model;
  std::string version;
};

struct wkv_state {
  const wkv_model* owner;
  wkv::State state;
};

namespace {
void set_error(char* err, size_t n, const std::string& msg) {
  if (!err || n == 0) return;
  const size_t k = std::min(n - 1, msg.size());
  std::memcpy(err, msg.data(), k);
  err[k] = '\0';
}
}  // namespace

extern "C" {

wkv_model* wkv_model_init(const char* path, char* err, size_t err_size) {
  if (!path) {
    set_error(err, err_size, "wkv_model_init: path is NULL");
    return nullptr;
  }
  try {
    auto t = wkv::load_tensors(path);
    if (!t) {
      set_error(err, err_size, t.error().message);
      return nullptr;
    }
    auto m = wkv::load_model(std::move(*t), path);
    if (!m) {
      set_error(err, err_size, m.error().message);
      return nullptr;
    }
    auto* h = new wkv_model{std::move(*m), {}};
    h->version = std::string(wkv::version_name(h->model->hparams().version));
    return h;
  } catch (const std::bad_alloc&) {
    set_error(err, err_size, std::string(path) + ": out of memory while loading");
  } catch (const std::exception& e) {
    set_error(err, err_size, std::string(path) + ": " + e.what());
  }
  return nullptr;
}

void wkv_model_free(wkv_model* model) { delete model; }

int32_t wkv_model_vocab_size(const wkv_model* m) { return m ? m->model->hparams().vocab_size : 0; }
int32_t wkv_model_n_layer(const wkv_model* m) { return m ? m->model->hparams().n_layer : 0; }
int32_t wkv_model_n_embd(const wkv_model* m) { return m ? m->model->hparams().n_embd : 0; }
const char* wkv_model_version(const wkv_model* m) { return m ? m->version.c_str() : ""; }

wkv_state* wkv_state_init(const wkv_model* model) {
  if (!model) return nullptr;
  try {
    return new wkv_state{model, model->model->new_state()};
  } catch (const std::exception&) {
    return nullptr;
  }
}

wkv_state* wkv_state_copy(const wkv_state* s) {
  if (!s) return nullptr;
  try {
    return new wkv_state(*s);
  } catch (const std::exception&) {
    return nullptr;
  }
}

void wkv_state_free(wkv_state* state) { delete state; }

size_t wkv_state_size(const wkv_state* s) { return s ? s->state.data.size() : 0; }

int wkv_eval(wkv_model* model, const int32_t* tokens, size_t n_tokens, wkv_state* state,
             float* logits_out, char* err, size_t err_size) {
  if (!model || !state || (!tokens && n_tokens > 0)) {
    set_error(err, err_size, "wkv_eval: model, state and tokens must not be NULL");
    return -1;
  }
  if (state->owner != model) {
    set_error(err, err_size, "wkv_eval: the state belongs to another model");
    return -1;
  }
  if (n_tokens == 0) {
    set_error(err, err_size, "wkv_eval: no tokens");
    return -1;
  }
  const int32_t V = model->model->hparams().vocab_size;
  for (size_t i = 0; i < n_tokens; ++i)
    if (tokens[i] < 0 || tokens[i] >= V) {
      set_error(err, err_size, "wkv_eval: token " + std::to_string(tokens[i]) + " at index " +
                                   std::to_string(i) + " is outside the vocabulary 0.." +
                                   std::to_string(V - 1));
      return -1;
    }
  try {
    model->model->forward_seq(std::span<const int32_t>(tokens, n_tokens), state->state, logits_out,
                              logits_out ? wkv::Logits::last : wkv::Logits::none);
  } catch (const std::exception& e) {
    set_error(err, err_size, std::string("wkv_eval: ") + e.what());
    return -1;
  }
  return 0;
}

}  // extern "C"
