/* The C ABI used from C: load, evaluate, copy a state, and report bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wkv/wkv.h"

#define CHECK(c)                                                   \
  do {                                                             \
    if (!(c)) {                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      return 1;                                                    \
    }                                                              \
  } while (0)

int main(int argc, char** argv) {
  char err[256];
  CHECK(argc == 2);
  CHECK(wkv_model_init("/nonexistent.pth", err, sizeof err) == NULL);
  CHECK(strstr(err, "/nonexistent.pth") != NULL);

  wkv_model* m = wkv_model_init(argv[1], err, sizeof err);
  if (!m) fprintf(stderr, "%s\n", err);
  CHECK(m != NULL);
  CHECK(strcmp(wkv_model_version(m), "7.0") == 0);
  const int32_t V = wkv_model_vocab_size(m);
  CHECK(V == 256);

  wkv_state* s = wkv_state_init(m);
  const size_t size = wkv_state_size(s);
  const int32_t prompt[] = {'"', 'i', 'n'};
  float* a = malloc(sizeof(float) * (size_t)V);
  float* b = malloc(sizeof(float) * (size_t)V);
  CHECK(wkv_eval(m, prompt, 3, s, NULL, err, sizeof err) == 0);
  wkv_state* c = wkv_state_copy(s);
  const int32_t next = ' ';
  CHECK(wkv_eval(m, &next, 1, s, a, err, sizeof err) == 0);
  CHECK(wkv_eval(m, &next, 1, c, b, err, sizeof err) == 0);
  CHECK(memcmp(a, b, sizeof(float) * (size_t)V) == 0);
  CHECK(wkv_state_size(s) == size);

  const int32_t bad = 300;
  CHECK(wkv_eval(m, &bad, 1, s, a, err, sizeof err) == -1);
  CHECK(strstr(err, "300") != NULL);

  free(a);
  free(b);
  wkv_state_free(c);
  wkv_state_free(s);
  wkv_model_free(m);
  puts("capi: ok");
  return 0;
}
