// A fresh RWKV-7 model with the official initialisation (RWKV-LM x070 constructors followed by
// generate_init_weight): ../shared/spec/TRAINING_REFERENCE.md §6.
#pragma once

#include <cstdint>

#include "train/params.hpp"

namespace wkv::train {

// The official LoRA widths for width C ("suggestion" of the x070 model code): decay and
// in-context rate max(32, round(2.5·√C/32)·32), value max(32, round(1.7·√C/32)·32), gate
// max(32, round(5·√C/32)·32), with Python's round-half-to-even.
int64_t official_lora_width(int64_t C, double factor);

// L layers, width C, head size N (C % N == 0), vocabulary V, FFN width F (0: 4·C). LoRA widths
// left at 0 in `d` take the official sizes. Deterministic given the seed.
Expected<Params<float>> official_init(Dims d, uint64_t seed);

}  // namespace wkv::train
