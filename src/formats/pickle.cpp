// The restricted unpickler: opcode loop, allow-listed globals, symbolic REDUCE.
#include "formats/pickle.hpp"

#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace wkv::pickle {

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
    case Kind::device: return "torch.device";
  }
  return "?";
}

namespace {

// Every opcode of pickle protocols 0-5, for error messages.
std::string_view opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
  }
  return "";
}

struct AllowedGlobal {
  std::string_view name;
  Global global;
  DType dtype;
};

constexpr AllowedGlobal kAllowed[] = {
    {"collections.OrderedDict", Global::ordered_dict, DType::f32},
    {"torch._utils._rebuild_tensor_v2", Global::rebuild_tensor_v2, DType::f32},
    {"torch._utils._rebuild_parameter", Global::rebuild_parameter, DType::f32},
    {"torch.device", Global::device, DType::f32},
    {"torch.FloatStorage", Global::storage_class, DType::f32},
    {"torch.HalfStorage", Global::storage_class, DType::f16},
    {"torch.BFloat16Storage", Global::storage_class, DType::bf16},
    {"torch.DoubleStorage", Global::storage_class, DType::f64},
    {"torch.LongStorage", Global::storage_class, DType::i64},
    {"torch.IntStorage", Global::storage_class, DType::i32},
    {"torch.ShortStorage", Global::storage_class, DType::i16},
    {"torch.CharStorage", Global::storage_class, DType::i8},
    {"torch.ByteStorage", Global::storage_class, DType::u8},
    {"torch.BoolStorage", Global::storage_class, DType::boolean},
};

class Machine {
 public:
  Machine(const std::string& label, std::span<const std::byte> data, const Limits& limits)
      : label_(label), data_(data), limits_(limits), arena_(std::make_unique<std::deque<Object>>()) {}

  Expected<Result> run();

 private:
  // Error at the opcode being executed.
  Error fail(const std::string& what) const {
    return Error{label_ + ": " + what + " at byte offset " + std::to_string(op_pos_)};
  }
  std::string op_str() const {
    std::string_view n = opcode_name(op_);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op_);
    return n.empty() ? std::string("unknown opcode ") + hex
                     : "opcode " + std::string(n) + " (" + hex + ")";
  }

  bool have(uint64_t n) const { return data_.size() - pos_ >= n; }
  const std::byte* take(uint64_t n) {
    const std::byte* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t le(const std::byte* p, int n) const {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
    return v;
  }

  Expected<Object*> make(Kind k) {
    if (arena_->size() >= limits_.max_objects) return fail("too many objects in the pickle");
    Object& o = arena_->emplace_back();
    o.kind = k;
    o.offset = op_pos_;
    return &o;
  }
  Status push(const Object* o) {
    if (stack_.size() >= limits_.max_stack) return fail("pickle stack too deep");
    stack_.push_back(o);
    return Status::success();
  }
  // Creates an object of kind k and pushes it.
  Expected<Object*> push_new(Kind k) {
    auto o = make(k);
    if (!o) return o.error();
    WKV_TRY_STATUS(push(*o));
    return *o;
  }
  Status push_empty(Kind k) {
    auto o = push_new(k);
    return o ? Status::success() : Status(o.error());
  }
  Expected<const Object*> pop() {
    if (stack_.size() <= stack_floor()) return fail("stack underflow in " + op_str());
    const Object* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the last MARK, and the mark.
  Expected<std::vector<const Object*>> pop_mark() {
    if (marks_.empty()) return fail("no MARK for " + op_str());
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<const Object*> items(stack_.begin() + static_cast<ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  // Top of stack as a mutable object of the given kind (for SETITEM, APPEND, ...).
  Expected<Object*> top_as(Kind k) {
    if (stack_.size() <= stack_floor()) return fail("stack underflow in " + op_str());
    const Object* o = stack_.back();
    if (o->kind != k)
      return fail(op_str() + " applied to a " + std::string(kind_name(o->kind)) + " instead of a " +
                  std::string(kind_name(k)));
    return const_cast<Object*>(o);  // all objects are arena-owned and mutable
  }

  Status push_int(int64_t v) {
    auto o = push_new(Kind::integer);
    if (!o) return o.error();
    (*o)->i = v;
    return Status::success();
  }
  Status push_string(uint64_t len) {
    if (!have(len)) return fail("truncated string in " + op_str());
    const char* s = reinterpret_cast<const char*>(take(len));
    auto o = push_new(Kind::string);
    if (!o) return o.error();
    (*o)->str = std::string_view(s, static_cast<size_t>(len));
    return Status::success();
  }
  Status push_global(std::string_view module, std::string_view name);
  Status memo_put(uint64_t index) {
    if (stack_.size() <= stack_floor()) return fail("stack underflow in " + op_str());
    if (memo_.size() >= limits_.max_memo && !memo_.count(index)) return fail("pickle memo too large");
    memo_[index] = stack_.back();
    return Status::success();
  }
  Status memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return fail("memo index " + std::to_string(index) + " not defined");
    return push(it->second);
  }
  Status reduce();
  Status persistent_id();
  Status step();

  const std::string& label_;
  std::span<const std::byte> data_;
  Limits limits_;
  std::unique_ptr<std::deque<Object>> arena_;
  std::vector<const Object*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, const Object*> memo_;
  uint64_t pos_ = 0;
  uint64_t op_pos_ = 0;
  uint8_t op_ = 0;
  bool stopped_ = false;
  const Object* result_ = nullptr;
};

Status Machine::push_global(std::string_view module, std::string_view name) {
  std::string full = std::string(module) + "." + std::string(name);
  for (const AllowedGlobal& a : kAllowed) {
    if (a.name == full) {
      auto o = push_new(Kind::global);
      if (!o) return o.error();
      (*o)->global = a.global;
      (*o)->dtype = a.dtype;
      (*o)->str = a.name;
      return Status::success();
    }
  }
  // Keep the message readable even if the name holds control bytes.
  for (char& c : full)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (full.size() > 200) full = full.substr(0, 200) + "...";
  return fail("forbidden global '" + full +
              "' (only collections.OrderedDict, torch tensor rebuild functions, torch.*Storage "
              "and torch.device are allowed)");
}

// REDUCE: callable(*args) for the allow-listed callables, evaluated symbolically.
Status Machine::reduce() {
  auto args = pop();
  if (!args) return args.error();
  auto fn = pop();
  if (!fn) return fn.error();
  const Object* a = *args;
  const Object* f = *fn;
  if (f->kind != Kind::global)
    return fail("REDUCE on a " + std::string(kind_name(f->kind)) + " (not a callable)");
  if (a->kind != Kind::tuple) return fail("REDUCE arguments are not a tuple");
  const std::string fname(f->str);
  switch (f->global) {
    case Global::ordered_dict: {
      if (!a->items.empty()) return fail("collections.OrderedDict called with arguments");
      return push_empty(Kind::dict);
    }
    case Global::rebuild_tensor_v2: {
      if (a->items.size() != 6 && a->items.size() != 7)
        return fail("torch._utils._rebuild_tensor_v2 called with " +
                    std::to_string(a->items.size()) + " arguments (expected 6 or 7)");
      auto o = push_new(Kind::tensor);
      if (!o) return o.error();
      (*o)->items = a->items;
      return Status::success();
    }
    case Global::rebuild_parameter: {
      if (a->items.size() < 1 || a->items.size() > 4 || a->items[0]->kind != Kind::tensor)
        return fail("torch._utils._rebuild_parameter called without a tensor argument");
      return push(a->items[0]);
    }
    case Global::device: {
      if (a->items.empty() || a->items.size() > 2 || a->items[0]->kind != Kind::string)
        return fail("torch.device called with unexpected arguments");
      auto o = push_new(Kind::device);
      if (!o) return o.error();
      (*o)->str = a->items[0]->str;
      return Status::success();
    }
    case Global::storage_class:
      break;
  }
  return fail("calling " + fname + " is not supported");
}

// BINPERSID: torch's ('storage', <storage class>, key, location, numel).
Status Machine::persistent_id() {
  auto pid = pop();
  if (!pid) return pid.error();
  const Object* t = *pid;
  const auto& it = t->items;
  if (t->kind != Kind::tuple || it.size() != 5 || it[0]->kind != Kind::string ||
      it[0]->str != "storage")
    return fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
  if (it[1]->kind != Kind::global || it[1]->global != Global::storage_class)
    return fail("persistent id: storage type is not a torch.*Storage class");
  if (it[2]->kind != Kind::string) return fail("persistent id: storage key is not a string");
  if (it[4]->kind != Kind::integer || it[4]->i < 0)
    return fail("persistent id: storage size is not a non-negative integer");
  auto o = push_new(Kind::storage);
  if (!o) return o.error();
  (*o)->dtype = it[1]->dtype;
  (*o)->str = it[2]->str;
  (*o)->i = it[4]->i;
  return Status::success();
}

Status Machine::step() {
  op_pos_ = pos_;
  op_ = static_cast<uint8_t>(*take(1));
  // Bytes of inline argument each opcode needs before it can run.
  auto need = [&](uint64_t n) -> Status {
    if (!have(n)) return fail("truncated argument of " + op_str());
    return Status::success();
  };
  switch (op_) {
    case 0x80: {  // PROTO
      WKV_TRY_STATUS(need(1));
      const uint8_t v = static_cast<uint8_t>(*take(1));
      if (v > 5) return fail("unsupported pickle protocol " + std::to_string(v));
      return Status::success();
    }
    case 0x95:  // FRAME: an 8-byte length hint; frames need no special handling
      WKV_TRY_STATUS(need(8));
      take(8);
      return Status::success();
    case '.': {  // STOP
      auto r = pop();
      if (!r) return r.error();
      result_ = *r;
      stopped_ = true;
      return Status::success();
    }
    case '(':
      if (marks_.size() >= limits_.max_marks) return fail("MARKs nested too deeply");
      marks_.push_back(stack_.size());
      return Status::success();
    case '0': {
      auto o = pop();
      return o ? Status::success() : Status(o.error());
    }
    case '1': {
      auto items = pop_mark();
      return items ? Status::success() : Status(items.error());
    }
    case '2': {
      if (stack_.size() <= stack_floor()) return fail("stack underflow in DUP");
      return push(stack_.back());
    }
    case 'N': return push_empty(Kind::none);
    case 0x88:
    case 0x89: {
      auto o = push_new(Kind::boolean);
      if (!o) return o.error();
      (*o)->flag = op_ == 0x88;
      return Status::success();
    }
    case 'J':
      WKV_TRY_STATUS(need(4));
      return push_int(static_cast<int32_t>(static_cast<uint32_t>(le(take(4), 4))));
    case 'K':
      WKV_TRY_STATUS(need(1));
      return push_int(static_cast<int64_t>(le(take(1), 1)));
    case 'M':
      WKV_TRY_STATUS(need(2));
      return push_int(static_cast<int64_t>(le(take(2), 2)));
    case 0x8a: {  // LONG1: n-byte little-endian two's complement
      WKV_TRY_STATUS(need(1));
      const uint8_t n = static_cast<uint8_t>(*take(1));
      if (n > 8) return fail("integer does not fit in 64 bits");
      WKV_TRY_STATUS(need(n));
      uint64_t v = le(take(n), n);
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
      return push_int(static_cast<int64_t>(v));
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      WKV_TRY_STATUS(need(8));
      const std::byte* p = take(8);
      uint64_t bits = 0;
      for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(p[k]);
      auto o = push_new(Kind::floating);
      if (!o) return o.error();
      std::memcpy(&(*o)->f, &bits, 8);
      return Status::success();
    }
    case 'X':  // BINUNICODE
    case 'T':  // BINSTRING
    case 'B':  // BINBYTES
      WKV_TRY_STATUS(need(4));
      return push_string(le(take(4), 4));
    case 0x8c:  // SHORT_BINUNICODE
    case 'U':   // SHORT_BINSTRING
    case 'C':   // SHORT_BINBYTES
      WKV_TRY_STATUS(need(1));
      return push_string(le(take(1), 1));
    case 0x8d:  // BINUNICODE8
    case 0x8e:  // BINBYTES8
      WKV_TRY_STATUS(need(8));
      return push_string(le(take(8), 8));
    case ')': return push_empty(Kind::tuple);
    case ']': return push_empty(Kind::list);
    case '}': return push_empty(Kind::dict);
    case 't':
    case 'l': {  // TUPLE, LIST
      auto items = pop_mark();
      if (!items) return items.error();
      auto o = push_new(op_ == 't' ? Kind::tuple : Kind::list);
      if (!o) return o.error();
      (*o)->items = std::move(*items);
      return Status::success();
    }
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      const size_t n = op_ - 0x84u;
      if (stack_.size() - stack_floor() < n) return fail("stack underflow in " + op_str());
      std::vector<const Object*> items(stack_.end() - static_cast<ptrdiff_t>(n), stack_.end());
      stack_.resize(stack_.size() - n);
      auto o = push_new(Kind::tuple);
      if (!o) return o.error();
      (*o)->items = std::move(items);
      return Status::success();
    }
    case 'd': {  // DICT
      auto items = pop_mark();
      if (!items) return items.error();
      if (items->size() % 2) return fail("DICT with an odd number of items");
      auto o = push_new(Kind::dict);
      if (!o) return o.error();
      (*o)->items = std::move(*items);
      return Status::success();
    }
    case 's': {  // SETITEM
      auto v = pop();
      if (!v) return v.error();
      auto k = pop();
      if (!k) return k.error();
      auto d = top_as(Kind::dict);
      if (!d) return d.error();
      (*d)->items.push_back(*k);
      (*d)->items.push_back(*v);
      return Status::success();
    }
    case 'u': {  // SETITEMS
      auto items = pop_mark();
      if (!items) return items.error();
      if (items->size() % 2) return fail("SETITEMS with an odd number of items");
      auto d = top_as(Kind::dict);
      if (!d) return d.error();
      (*d)->items.insert((*d)->items.end(), items->begin(), items->end());
      return Status::success();
    }
    case 'a': {  // APPEND
      auto v = pop();
      if (!v) return v.error();
      auto l = top_as(Kind::list);
      if (!l) return l.error();
      (*l)->items.push_back(*v);
      return Status::success();
    }
    case 'e': {  // APPENDS
      auto items = pop_mark();
      if (!items) return items.error();
      auto l = top_as(Kind::list);
      if (!l) return l.error();
      (*l)->items.insert((*l)->items.end(), items->begin(), items->end());
      return Status::success();
    }
    case 'q':
      WKV_TRY_STATUS(need(1));
      return memo_put(le(take(1), 1));
    case 'r':
      WKV_TRY_STATUS(need(4));
      return memo_put(le(take(4), 4));
    case 0x94: return memo_put(memo_.size());
    case 'h':
      WKV_TRY_STATUS(need(1));
      return memo_get(le(take(1), 1));
    case 'j':
      WKV_TRY_STATUS(need(4));
      return memo_get(le(take(4), 4));
    case 'c': {  // GLOBAL "module\nname\n"
      std::string_view line[2];
      for (auto& l : line) {
        const char* s = reinterpret_cast<const char*>(data_.data() + pos_);
        const void* nl = std::memchr(s, '\n', static_cast<size_t>(data_.size() - pos_));
        if (!nl) return fail("truncated argument of " + op_str());
        l = std::string_view(s, static_cast<size_t>(static_cast<const char*>(nl) - s));
        pos_ += l.size() + 1;
      }
      return push_global(line[0], line[1]);
    }
    case 0x93: {  // STACK_GLOBAL
      auto name = pop();
      if (!name) return name.error();
      auto module = pop();
      if (!module) return module.error();
      if ((*name)->kind != Kind::string || (*module)->kind != Kind::string)
        return fail("STACK_GLOBAL with non-string module or name");
      return push_global((*module)->str, (*name)->str);
    }
    case 'R': return reduce();
    case 'Q': return persistent_id();
    case 'b': {  // BUILD: the state is irrelevant for state dicts and tensors; drop it
      auto state = pop();
      if (!state) return state.error();
      if (stack_.size() <= stack_floor()) return fail("stack underflow in BUILD");
      return Status::success();
    }
    default:
      return fail("unsupported " + op_str());
  }
}

Expected<Result> Machine::run() {
  while (!stopped_) {
    if (pos_ >= data_.size()) return Error{label_ + ": truncated pickle (no STOP opcode)"};
    WKV_TRY_STATUS(step());
  }
  return Result{std::move(arena_), result_};
}

}  // namespace

Expected<Result> unpickle(const std::string& label, std::span<const std::byte> data,
                          const Limits& limits) {
  Machine m(label, data, limits);
  return m.run();
}

}  // namespace wkv::pickle
