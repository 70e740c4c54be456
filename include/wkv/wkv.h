/* wkv C ABI: load an RWKV checkpoint, keep recurrent states, evaluate tokens.
 * Opaque handles with *_init / *_free pairs; no exceptions cross this boundary. Errors come
 * back as a return value plus a NUL-terminated message written to a caller buffer.
 * A model may be used by one thread at a time; states are independent of each other. */
#ifndef WKV_H
#define WKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wkv_model wkv_model;
typedef struct wkv_state wkv_state;

/* Loads a checkpoint (.pth or .safetensors). Returns NULL on failure and writes the reason to
 * err (at most err_size bytes including the NUL; err may be NULL). */
wkv_model* wkv_model_init(const char* path, char* err, size_t err_size);
void wkv_model_free(wkv_model* model);

int32_t wkv_model_vocab_size(const wkv_model* model);
int32_t wkv_model_n_layer(const wkv_model* model);
int32_t wkv_model_n_embd(const wkv_model* model);
/* "4", "5.0", ..., "7.0" (static storage). */
const char* wkv_model_version(const wkv_model* model);

/* A fresh initial state for this model; a copy of an existing one. */
wkv_state* wkv_state_init(const wkv_model* model);
wkv_state* wkv_state_copy(const wkv_state* state);
void wkv_state_free(wkv_state* state);
/* Number of floats in the state (constant for a model, whatever the tokens seen). */
size_t wkv_state_size(const wkv_state* state);

/* Feeds n_tokens tokens, updating state in place. When logits_out is not NULL it receives
 * vocab_size floats: the prediction after the last token. Returns 0 on success, -1 on bad
 * input (a token outside the vocabulary, a state of another model, n_tokens == 0) with the
 * reason in err; the state is unchanged on failure. */
int wkv_eval(wkv_model* model, const int32_t* tokens, size_t n_tokens, wkv_state* state,
             float* logits_out, char* err, size_t err_size);

#ifdef __cplusplus
}
#endif

#endif /* WKV_H */
