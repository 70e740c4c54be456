// Restricted unpickler for the data.pkl of torch.save checkpoints: builds an inert object graph,
// never imports or calls anything.
//
// Pickle format summary: a program for a stack machine. Each opcode is one byte, followed by
// inline arguments (little-endian integers, length-prefixed strings, newline-terminated text for
// GLOBAL). MARK pushes a marker; TUPLE/LIST/DICT/SETITEMS/APPENDS consume everything above the
// last marker. The memo (BINPUT/MEMOIZE store, BINGET fetches) lets the same object appear
// twice. GLOBAL/STACK_GLOBAL name a Python callable "module.name"; REDUCE calls it with a tuple
// of arguments; BUILD sets an object's state; BINPERSID resolves a persistent id (torch uses
// ('storage', <storage class>, key, location, numel) to refer to the zip entry data/<key>). STOP
// ends the program and returns the top of the stack.
//
// Safety: only a fixed allow-list of globals (see Global) is accepted, and REDUCE only builds
// symbolic objects for them; any other global or opcode is an error naming it and its byte
// offset. Objects live in an arena owned by the Result (self-referencing graphs are harmless),
// and the stack, memo, mark depth and object count are bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.hpp"
#include "core/error.hpp"

namespace wkv::pickle {

enum class Kind : uint8_t {
  none,
  boolean,
  integer,
  floating,
  string,   // str or bytes
  tuple,
  list,
  dict,     // dict or collections.OrderedDict
  global,   // an allow-listed callable, see Global
  storage,  // a resolved persistent id
  tensor,   // result of torch._utils._rebuild_tensor_v2 (or _rebuild_parameter of one)
  device,   // torch.device(...)
};
std::string_view kind_name(Kind k);

enum class Global : uint8_t { ordered_dict, rebuild_tensor_v2, rebuild_parameter, storage_class, device };

struct Object {
  Kind kind = Kind::none;
  Global global = Global::ordered_dict;  // kind == global
  DType dtype = DType::f32;              // kind == storage, or global storage_class
  bool flag = false;                     // kind == boolean
  int64_t i = 0;                         // integer value; storage: numel
  double f = 0;                          // floating
  std::string_view str;                  // string, storage key, device type (views into the pickle)
  // tuple/list: elements; dict: key0, value0, key1, value1, ...;
  // tensor: the _rebuild_tensor_v2 arguments (storage, offset, size, stride, requires_grad, hooks[, metadata])
  std::vector<const Object*> items;
  uint64_t offset = 0;  // byte offset of the opcode that created it
};

struct Result {
  std::unique_ptr<std::deque<Object>> arena;
  const Object* root = nullptr;
};

struct Limits {
  size_t max_stack = 1u << 20;
  size_t max_memo = 1u << 20;
  size_t max_marks = 256;
  size_t max_objects = 1u << 21;  // about 72 bytes each
};

// `label` prefixes error messages (e.g. "model.pth: archive/data.pkl"). String views in the
// result point into `data`, which must outlive it.
Expected<Result> unpickle(const std::string& label, std::span<const std::byte> data,
                          const Limits& limits = {});

}  // namespace wkv::pickle
