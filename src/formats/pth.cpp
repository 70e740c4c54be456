// torch.save checkpoints: locate data.pkl in the zip, unpickle it (restricted), and turn the
// state dict's tensors into views of the storage entries after checking every bound.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "formats/formats.hpp"
#include "formats/pickle.hpp"
#include "formats/zip.hpp"

namespace wkv {

namespace {

constexpr uint64_t kMaxPickleBytes = 64ull << 20;
constexpr uint64_t kMaxStorageBytes = 64ull << 30;  // one inflated storage entry
constexpr size_t kMaxDims = 64;

using pickle::Kind;
using pickle::Object;

// A storage entry's bytes, aligned for any element type (copied if the archive misaligns it).
struct Storage {
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;  // null: points into the archive bytes
};

class PthLoader {
 public:
  PthLoader(const std::string& name, std::span<const std::byte> bytes,
            std::shared_ptr<const void> owner)
      : name_(name), bytes_(bytes), owner_(std::move(owner)) {}

  Expected<TensorMap> load();

 private:
  Error err(const std::string& m) const { return Error{name_ + ": " + m}; }
  Expected<const Storage*> storage(const std::string& key);
  Expected<Tensor> tensor(const std::string& key, const Object* t);

  const std::string& name_;
  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> owner_;
  std::optional<zip::Archive> zip_;
  std::string prefix_;  // "<top>/"
  std::unordered_map<std::string, Storage> storages_;
};

Expected<TensorMap> PthLoader::load() {
  auto ar = zip::Archive::parse(name_, bytes_);
  if (!ar) return ar.error();
  zip_ = std::move(*ar);

  const zip::Entry* pkl = nullptr;
  for (const zip::Entry& e : zip_->entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || slash == 0 || e.name.compare(slash, std::string::npos, "/data.pkl") != 0)
      continue;
    if (pkl) return err("several data.pkl entries ('" + pkl->name + "', '" + e.name + "')");
    pkl = &e;
    prefix_ = e.name.substr(0, slash + 1);
  }
  if (!pkl) return err("no '<folder>/data.pkl' entry: not a torch.save checkpoint");

  if (const zip::Entry* bo = zip_->find(prefix_ + "byteorder")) {
    auto d = zip_->read(*bo, 64, true);
    if (!d) return d.error();
    std::string order(reinterpret_cast<const char*>(d->bytes.data()), d->bytes.size());
    while (!order.empty() && (order.back() == '\n' || order.back() == '\r' || order.back() == ' '))
      order.pop_back();
    if (order != "little")
      return err("byteorder is '" + order.substr(0, 32) + "'; only little-endian checkpoints are supported");
  }

  auto pkl_bytes = zip_->read(*pkl, kMaxPickleBytes, true);
  if (!pkl_bytes) return pkl_bytes.error();
  auto res = pickle::unpickle(name_ + ": " + pkl->name, pkl_bytes->bytes);
  if (!res) return res.error();
  const Object* root = res->root;
  if (root->kind != Kind::dict)
    return err(pkl->name + " holds a " + std::string(pickle::kind_name(root->kind)) +
               ", not a state dict (dict of name -> tensor)");

  TensorMap out;
  for (size_t i = 0; i + 1 < root->items.size(); i += 2) {
    const Object* k = root->items[i];
    const Object* v = root->items[i + 1];
    if (k->kind != Kind::string)
      return err("state dict key at pickle offset " + std::to_string(k->offset) + " is a " +
                 std::string(pickle::kind_name(k->kind)) + ", not a string");
    const std::string key(k->str);
    if (v->kind != Kind::tensor)
      return err("state dict value '" + key + "' is a " + std::string(pickle::kind_name(v->kind)) +
                 ", not a tensor (nested checkpoints are not supported)");
    if (out.count(key)) return err("duplicate tensor name '" + key + "'");
    auto t = tensor(key, v);
    if (!t) return t.error();
    out.emplace(key, std::move(*t));
  }
  return out;
}

Expected<const Storage*> PthLoader::storage(const std::string& key) {
  auto it = storages_.find(key);
  if (it != storages_.end()) return &it->second;
  const std::string entry_name = prefix_ + "data/" + key;
  const zip::Entry* e = zip_->find(entry_name);
  if (!e) return err("storage '" + key + "' missing (no zip entry '" + entry_name + "')");
  auto d = zip_->read(*e, kMaxStorageBytes, false);
  if (!d) return d.error();
  Storage s{d->bytes, d->owner};
  if (reinterpret_cast<uintptr_t>(s.bytes.data()) % alignof(std::max_align_t) != 0) {
    auto copy = std::make_shared<std::vector<std::byte>>(s.bytes.begin(), s.bytes.end());
    s.bytes = std::span<const std::byte>(copy->data(), copy->size());
    s.owner = copy;
  }
  return &storages_.emplace(key, std::move(s)).first->second;
}

Expected<Tensor> PthLoader::tensor(const std::string& key, const Object* t) {
  auto bad = [&](const std::string& m) { return err("tensor '" + key + "': " + m); };
  const auto& a = t->items;  // storage, storage_offset, size, stride, requires_grad, hooks[, metadata]
  const Object* st = a[0];
  if (st->kind != Kind::storage) return bad("first rebuild argument is not a storage");
  if (a[1]->kind != Kind::integer || a[1]->i < 0) return bad("storage offset is not a non-negative integer");
  if (a[2]->kind != Kind::tuple || a[3]->kind != Kind::tuple) return bad("size or stride is not a tuple");
  const auto& sizes = a[2]->items;
  const auto& strides = a[3]->items;
  if (sizes.size() != strides.size())
    return bad("size has " + std::to_string(sizes.size()) + " dims but stride has " +
               std::to_string(strides.size()));
  if (sizes.size() > kMaxDims) return bad("too many dimensions (" + std::to_string(sizes.size()) + ")");

  Tensor out;
  out.dtype = st->dtype;
  const uint64_t es = dtype_size(out.dtype);
  const uint64_t offset = static_cast<uint64_t>(a[1]->i);
  uint64_t numel = 1;
  uint64_t last = offset;  // element index of the last element reached
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d]->kind != Kind::integer || strides[d]->kind != Kind::integer)
      return bad("size or stride element is not an integer");
    if (sizes[d]->i < 0 || strides[d]->i < 0)
      return bad("negative size or stride (size " + std::to_string(sizes[d]->i) + ", stride " +
                 std::to_string(strides[d]->i) + ")");
    out.shape.push_back(sizes[d]->i);
    out.strides.push_back(strides[d]->i);
  }
  bool overflow = false;
  for (int64_t s : out.shape) overflow |= !checked_mul(numel, static_cast<uint64_t>(s), &numel);
  if (!overflow && numel > 0) {
    for (size_t d = 0; d < out.shape.size(); ++d) {
      uint64_t reach = 0;
      overflow |= !checked_mul(static_cast<uint64_t>(out.shape[d] - 1),
                               static_cast<uint64_t>(out.strides[d]), &reach) ||
                  !checked_add(last, reach, &last);
    }
  }
  const uint64_t storage_numel = static_cast<uint64_t>(st->i);
  const std::string shape = out.shape_str();
  if (overflow || numel > storage_numel)
    return bad("shape " + shape + " has more elements than its storage '" + std::string(st->str) +
               "' (" + std::to_string(storage_numel) + ")");
  if (numel > 0 ? last >= storage_numel : offset > storage_numel)
    return bad("shape " + shape + " with offset " + std::to_string(offset) +
               " reaches past the end of its storage '" + std::string(st->str) + "' (" +
               std::to_string(storage_numel) + " elements)");

  auto s = storage(std::string(st->str));
  if (!s) return s.error();
  uint64_t storage_bytes = 0;
  if (!checked_mul(storage_numel, es, &storage_bytes) || storage_bytes > (*s)->bytes.size())
    return bad("storage '" + std::string(st->str) + "' declares " + std::to_string(storage_numel) +
               " elements of " + std::to_string(es) + " bytes but its entry holds " +
               std::to_string((*s)->bytes.size()) + " bytes");
  out.data = (*s)->bytes.data() + offset * es;
  out.owner = (*s)->owner ? (*s)->owner : owner_;
  return out;
}

}  // namespace

Expected<TensorMap> load_pth_from_memory(const std::string& name, std::span<const std::byte> bytes,
                                         std::shared_ptr<const void> owner) {
  PthLoader loader(name, bytes, std::move(owner));
  return loader.load();
}

Expected<TensorMap> load_pth(const std::string& path) {
  auto f = MappedFile::open(path);
  if (!f) return f.error();
  return load_pth_from_memory(path, (*f)->bytes(), *f);
}

}  // namespace wkv
