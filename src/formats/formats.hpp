// Tensor file formats: PyTorch torch.save checkpoints (.pth, zip + restricted pickle),
// safetensors (read and write) and rwkv.cpp model files (.bin, read). Every reader validates untrusted input and returns an Error
// naming the file, the tensor and the problem; it never crashes or allocates from unchecked sizes.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "core/error.hpp"
#include "core/file.hpp"
#include "core/tensor.hpp"

namespace wkv {

// torch.save checkpoint: a zip holding <top>/data.pkl (a state dict: dict or OrderedDict of
// name -> tensor or nn.Parameter) and <top>/data/<key> storages. Tensors keep their storage
// offset and strides. Stored (uncompressed), suitably aligned storages are not copied: tensors
// point into the file mapping and keep it alive through Tensor::owner. Deflated storages are
// inflated into owned buffers (bounded sizes). A dict value that is not a tensor is an error
// (nested checkpoints such as {'model': state_dict, 'optimizer': ...} are not state dicts).
Expected<TensorMap> load_pth(const std::string& path);

// safetensors file; tensors point into the file mapping (copied only when misaligned for their
// element type). The string metadata ("__metadata__") is returned through `metadata` if given.
Expected<TensorMap> load_safetensors(const std::string& path,
                                     std::map<std::string, std::string>* metadata);
Expected<TensorMap> load_safetensors(const std::string& path);

// rwkv.cpp model file (.bin, magic 0x67676d66, versions 100 and 101; FP32, FP16, Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0 records), returned with the official checkpoint's names, shapes and
// parameterisation: rwkv.cpp's converter is undone (v4 -exp(time_decay), v5 exp(-exp(.)) /
// exp(.), v6/v7 transposed LoRA matrices, v7 att.x_rwkvag split into att.x_r .. att.x_g,
// squeezed time_* vectors restored; rwkvcpp.cpp lists every rule). FP32 records are used in
// place when aligned, FP16 records stay f16, quantized records are dequantized exactly to f32.
Expected<TensorMap> load_rwkvcpp(const std::string& path);

// GGUF (llama.cpp's rwkv6/rwkv7 files and wkv's own; gguf.hpp has the container and mapping),
// returned with the canonical official names, shapes and parameterisation.
Expected<TensorMap> load_gguf(const std::string& path);

// Picks the reader by content: zip magic "PK\x03\x04" -> load_pth, "fmgg" (0x67676d66
// little-endian) -> load_rwkvcpp, "GGUF" -> load_gguf, otherwise safetensors.
Expected<TensorMap> load_tensors(const std::string& path);

// Writes a safetensors file atomically: tensors contiguous in sorted-name order, header padded
// with spaces so that the data section starts 8-byte aligned. Non-contiguous tensors are written
// in logical order. Names must be valid UTF-8 and not "__metadata__".
Status save_safetensors(const std::string& path, const TensorMap& tensors,
                        const std::map<std::string, std::string>& metadata = {});

// Lower-level entry points (fuzzing, tests, callers that already hold the bytes). `name` labels
// error messages. Returned tensors point into `bytes` where possible and hold `owner` (may be
// null when the caller keeps `bytes` alive itself).
Expected<TensorMap> load_pth_from_memory(const std::string& name, std::span<const std::byte> bytes,
                                         std::shared_ptr<const void> owner = nullptr);
Expected<TensorMap> parse_safetensors_memory(const std::string& name,
                                             std::span<const std::byte> bytes,
                                             std::shared_ptr<const void> owner = nullptr,
                                             std::map<std::string, std::string>* metadata = nullptr);
Expected<TensorMap> load_rwkvcpp_from_memory(const std::string& name,
                                             std::span<const std::byte> bytes,
                                             std::shared_ptr<const void> owner = nullptr);
// Streams the safetensors encoding of `tensors` into `sink` (save_safetensors without the file).
Status write_safetensors(const ByteSink& sink, const TensorMap& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace wkv
