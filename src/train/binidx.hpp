// The official binidx token files (Megatron "MMIDIDX", RWKV-LM binidx.py / make_data.py):
//   NAME.idx: magic "MMIDIDX\0\0" (9 bytes), u64 version = 1, u8 dtype code (8 = u16,
//             4 = i32), u64 len (items), u64 doc_count, i32 sizes[len], i64 pointers[len]
//             (byte offsets into .bin), i64 doc_idx[doc_count]; all little-endian.
//   NAME.bin: every item's tokens back to back in that dtype.
// make_data.py writes one item per document with token 0 appended, doc_idx = 0, 1, ..., len.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace wkv::train {

// Writes PREFIX.bin and PREFIX.idx (each atomically); one item per document, token 0 appended
// to each. u16 when every id fits, else i32.
Status write_binidx(const std::string& prefix, const std::vector<std::vector<int32_t>>& docs);

// The official magic_prime for `tokens` tokens and ctx_len: the largest prime p ≡ 2 (mod 3)
// with p ≤ tokens/ctx_len − 1 and p / (tokens/ctx_len) > 0.9; 0 if there is none.
uint64_t magic_prime(uint64_t tokens, uint64_t ctx_len);

// Reads PREFIX.idx/.bin (PREFIX may also end in .bin or .idx) and returns all tokens as one
// stream, as the trainer treats it. Validates the index against the data file.
Expected<std::vector<int32_t>> read_binidx(const std::string& prefix);

}  // namespace wkv::train
