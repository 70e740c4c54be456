// torch.save-compatible checkpoint writer (see pth_write.hpp).
#include "formats/pth_write.hpp"

#include <cstring>
#include <set>

#include "core/file.hpp"
#include "formats/zip_write.hpp"

namespace wkv {

namespace {

// Protocol-2 pickle opcodes used here.
constexpr char kProto = '\x80', kGlobal = 'c', kEmptyTuple = ')', kReduce = 'R', kMark = '(',
               kSetItems = 'u', kTuple = 't', kBinPersId = 'Q', kNewFalse = '\x89', kStop = '.',
               kBinUnicode = 'X', kBinInt = 'J', kBinInt1 = 'K', kBinInt2 = 'M', kLong1 = '\x8a';

class Pickler {
 public:
  std::string out;
  void op(char c) { out.push_back(c); }
  void global(const char* module, const char* name) {
    op(kGlobal);
    out += module;
    out += '\n';
    out += name;
    out += '\n';
  }
  void str(const std::string& s) {
    op(kBinUnicode);
    u32(uint32_t(s.size()));
    out += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op(kBinInt1);
      out.push_back(char(v));
    } else if (v >= 0 && v < 65536) {
      op(kBinInt2);
      out.push_back(char(v & 0xff));
      out.push_back(char(v >> 8));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op(kBinInt);
      u32(uint32_t(int32_t(v)));
    } else {  // LONG1: little-endian two's complement, 8 bytes
      op(kLong1);
      out.push_back(8);
      for (int i = 0; i < 8; ++i) out.push_back(char(uint64_t(v) >> (8 * i)));
    }
  }
  void ordered_dict() {  // collections.OrderedDict()
    global("collections", "OrderedDict");
    op(kEmptyTuple);
    op(kReduce);
  }

 private:
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(char(v >> (8 * i)));
  }
};

const char* storage_class(DType t) {
  switch (t) {
    case DType::f32:
      return "FloatStorage";
    case DType::bf16:
      return "BFloat16Storage";
    case DType::f16:
      return "HalfStorage";
    default:
      return nullptr;
  }
}

}  // namespace

Status save_pth(const std::string& path, const TensorMap& tensors,
                const std::vector<std::string>& order) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& n : order) {
    if (!tensors.count(n)) return Error{path + ": tensor '" + n + "' is not in the state dict"};
    if (seen.insert(n).second) names.push_back(n);
  }
  for (const auto& [n, t] : tensors)
    if (!seen.count(n)) names.push_back(n);

  Pickler pk;
  pk.op(kProto);
  pk.op(2);
  pk.ordered_dict();
  pk.op(kMark);
  for (size_t i = 0; i < names.size(); ++i) {
    const Tensor& t = tensors.at(names[i]);
    const char* cls = storage_class(t.dtype);
    if (!cls)
      return Error{path + ": tensor '" + names[i] + "' has dtype " +
                   std::string(dtype_name(t.dtype)) + "; .pth writing supports f32, bf16, f16"};
    pk.str(names[i]);
    pk.global("torch._utils", "_rebuild_tensor_v2");
    pk.op(kMark);
    pk.op(kMark);  // persistent id of the storage
    pk.str("storage");
    pk.global("torch", cls);
    pk.str(std::to_string(i));
    pk.str("cpu");
    pk.integer(t.numel());
    pk.op(kTuple);
    pk.op(kBinPersId);
    pk.integer(0);  // storage offset
    pk.op(kMark);
    for (int64_t s : t.shape) pk.integer(s);
    pk.op(kTuple);
    pk.op(kMark);
    for (int64_t s : contiguous_strides(t.shape)) pk.integer(s);
    pk.op(kTuple);
    pk.op(kNewFalse);   // requires_grad
    pk.ordered_dict();  // backward hooks
    pk.op(kTuple);
    pk.op(kReduce);
  }
  pk.op(kSetItems);
  pk.op(kStop);

  Status inner;  // the writer's own error, if any (the sink only reports failure)
  auto check = [&](Status st) {
    if (!st) inner = st;
    return bool(st);
  };
  Status st = write_file_atomic(path, [&](const ByteSink& sink) {
    zip::Writer zw(sink);
    auto bytes = [](const std::string& s) {
      return std::span<const std::byte>(reinterpret_cast<const std::byte*>(s.data()), s.size());
    };
    if (!check(zw.add("archive/data.pkl", bytes(pk.out)))) return false;
    if (!check(zw.add("archive/byteorder", bytes("little")))) return false;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::vector<std::byte> data = contiguous_bytes(tensors.at(names[i]));
      if (!check(zw.add("archive/data/" + std::to_string(i), data))) return false;
    }
    if (!check(zw.add("archive/version", bytes("3\n")))) return false;
    return check(zw.finish());
  });
  if (!inner) return Error{path + ": " + inner.error().message};
  return st;
}

}  // namespace wkv
