// GGUF (version 3; 2 is read too): the container of ggml/llama.cpp, read and written
// spec-exactly, plus the mapping between wkv's canonical RWKV tensors and llama.cpp's `rwkv6` /
// `rwkv7` architectures (../shared/spec/GGUF_RWKV.md), so llama.cpp's files and ours are
// interchangeable.
//
// Container: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key/value pairs, the tensor
// infos (name, n_dims <= 4, ne[] innermost first, ggml type, offset), zero padding up to
// `general.alignment` (u32, power of two, default 32), then the data section. Offsets are
// relative to the data section, aligned, inside it and non-overlapping. Tensor types: F32, F16,
// BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (ggml's block layouts, used in place from the mapping);
// other ggml types are rejected by name. Every count, length and size is checked against the
// bytes that remain before anything is allocated; errors name the file, the key or tensor and
// the byte offset.
//
// RWKV mapping (rwkv_to_gguf / gguf_to_rwkv): RWKV-6 and RWKV-7 use llama.cpp's architecture
// names (`rwkv6`, `rwkv7`), metadata keys, tensor names and transforms (fused token-shift
// lerps, transposed LoRA factors, squeezed vectors, layer-0 value LoRA copies, RWKV-6
// `rescale_every_n_layers`). RWKV-4 and RWKV-5 have no llama.cpp architecture; wkv writes them
// under its own architecture names `wkv-rwkv4` / `wkv-rwkv5` with the canonical official tensor
// names and shapes (ne reversed), which llama.cpp does not load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/tensor.hpp"

namespace wkv {

enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars: unsigned integers and bool in `u`, signed in `i`, floats in `f`,
// strings in `str`. Arrays (`type` == array) hold `count` elements of type `elem`: strings in
// `strs`, anything else as the elements' little-endian bytes in `raw`. Arrays of arrays do not
// exist (the ggml reader rejects them, and so does this one).
struct GgufValue {
  GgufType type = GgufType::u32;
  GgufType elem = GgufType::u8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;
  uint64_t count = 0;
  std::vector<std::string> strs;
  std::vector<uint8_t> raw;

  static GgufValue of_u32(uint32_t v);
  static GgufValue of_i32(int32_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
  static GgufValue of_str(std::string v);
  // Any scalar type from a number (`v` converted to the type; u/i/f/bool as fits).
  static GgufValue scalar(GgufType t, double v);
  static GgufValue str_array(std::vector<std::string> v);
  static GgufValue i32_array(const std::vector<int32_t>& v);
  // A numeric or bool array of `count` elements given as little-endian bytes.
  static GgufValue raw_array(GgufType elem, uint64_t count, std::vector<uint8_t> bytes);

  bool operator==(const GgufValue& o) const;
};

struct GgufFile {
  uint32_t version = 3;
  uint32_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  // In file order. Shapes are in PyTorch order (GGUF's ne reversed); data is contiguous.
  std::vector<std::pair<std::string, Tensor>> tensors;

  const GgufValue* find(std::string_view key) const;
  const Tensor* tensor(std::string_view name) const;
  void set(const std::string& key, GgufValue v);  // replaces or appends
};

// ggml type ids for the dtypes GGUF can hold (f32 0, f16 1, q4_0 2, q4_1 3, q5_0 6, q5_1 7,
// q8_0 8, bf16 30); nothing for the others.
std::optional<uint32_t> ggml_type_of(DType t);

// Parsing. Tensors point into `bytes` (kept alive by `owner`, which may be null when the caller
// keeps `bytes` alive); a tensor is copied only if the file's alignment leaves it misaligned.
Expected<GgufFile> parse_gguf_memory(const std::string& name, std::span<const std::byte> bytes,
                                     std::shared_ptr<const void> owner = nullptr);
Expected<GgufFile> read_gguf(const std::string& path);  // memory-mapped

// Writing: header, metadata in order (`general.alignment` added when alignment != 32), tensor
// infos, then each tensor's bytes padded with zeros to the alignment (after the last one too,
// as ggml does). Tensor names must be unique and shorter than 64 bytes, ranks 1..4.
Status write_gguf(const ByteSink& sink, const GgufFile& file);
Status save_gguf(const std::string& path, const GgufFile& file);  // atomic

// --- RWKV mapping -----------------------------------------------------------------------------

struct GgufExportOptions {
  std::string name;  // general.name ("" = not written)
  // Embedded vocabulary (tokenizer.ggml.*): the bytes of every token id 0..V-1 and its
  // llama.cpp token type (1 normal, 3 control, 5 unused). Empty = no vocabulary written.
  std::vector<std::string> token_bytes;
  std::vector<int32_t> token_types;
};

// Canonical official tensors (any version) -> a GGUF in llama.cpp's layout (rwkv6/rwkv7) or
// wkv's own (wkv-rwkv4/wkv-rwkv5). Tensors keep their dtype, except those llama.cpp always
// stores in F32 (vectors, LoRA factors, fused lerps, time_mix_first), which become f32.
Expected<GgufFile> rwkv_to_gguf(const TensorMap& tensors, const GgufExportOptions& opt = {});
// The reverse: canonical official names, shapes and parameterisation (RWKV-6 rescaling undone).
// Plain-dtype tensors stay views of the file; fused or transposed quantized tensors (which
// llama.cpp never writes) are dequantized to f32. `where` names the file in errors.
Expected<TensorMap> gguf_to_rwkv(const GgufFile& file, const std::string& where);

Expected<TensorMap> load_gguf(const std::string& path);
Expected<TensorMap> load_gguf_from_memory(const std::string& name,
                                          std::span<const std::byte> bytes,
                                          std::shared_ptr<const void> owner = nullptr);

// The llama.cpp RWKV tokenizer strings: Python bytes repr without b'' (pure ASCII), and
// llama.cpp's unescaping of it.
std::string rwkv_escape_token(std::string_view bytes);
std::string rwkv_unescape_token(std::string_view text);

// The embedded vocabulary of a GGUF (`tokenizer.ggml.model` == "rwkv"): every token's bytes
// and type (1 when no token_type array is present). Nothing when the file has none; an Error
// when it is malformed (wrong types, lengths, duplicate strings).
struct GgufVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
};
Expected<std::optional<GgufVocab>> gguf_vocab(const GgufFile& file, const std::string& where);

// --- quantization ------------------------------------------------------------------------------

// A copy of `t` in `to` (f32, f16, bf16 or a quantized type; a quantized target needs the last
// dim to be a multiple of 32). Owned and contiguous.
Tensor cast_tensor(const Tensor& t, DType to);

// Which tensors of a GGUF `wkv quantize` turns into a block type: the large linear layers only
// (rwkv7: time_mix_{receptance,key,value,output}, channel_mix_{key,value}; rwkv6 adds
// time_mix_gate and channel_mix_receptance; wkv-rwkv4/5: att.{receptance,key,value,output,gate}
// and ffn.{key,value,receptance}), 2-D with a row length (ne[0]) that is a multiple of 32, and
// the head (output.weight / head.weight) only when `quantize_head`. Embeddings, norms, vectors,
// LoRA factors and fused lerps keep their dtype.
bool gguf_should_quantize(std::string_view name, const Tensor& t, bool quantize_head);

// The block type a matrix with rows of `cols` elements gets when `want` is asked for. The
// k-quants need whole 256-element super-blocks; narrower rows fall back as llama.cpp's
// quantizer does (q2_k and q3_k -> q4_0, as it has no IQ4_NL here; q4_k -> q5_0;
// q5_k -> q5_1; q6_k -> q8_0).
DType quant_type_for_row(DType want, int64_t cols);

// Sets general.file_type from the dtype of the large matrices (llama.cpp's LLAMA_FTYPE ids).
void gguf_update_file_type(GgufFile& f);

}  // namespace wkv
