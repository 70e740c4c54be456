// Version detection and the factory: the version is chosen once, here, at load.
#include <algorithm>

#include "model/model.hpp"
#include "model/versions.hpp"

namespace wkv {

std::string_view version_name(ModelVersion v) {
  switch (v) {
    case ModelVersion::v4: return "4";
    case ModelVersion::v5_0: return "5.0";
    case ModelVersion::v5_1: return "5.1";
    case ModelVersion::v5_2: return "5.2";
    case ModelVersion::v6_0: return "6.0";
    case ModelVersion::v7_0: return "7.0";
  }
  return "?";
}

namespace {
bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

Expected<ModelVersion> detect_version(const TensorMap& tensors) {
  bool v7 = false, ln_x = false, gate = false, maa = false, v4_decay = false, decay_2d = false;
  for (const auto& [name, t] : tensors) {
    if (contains(name, "att.k_k") || contains(name, "att.r_k")) v7 = true;
    if (contains(name, "ln_x")) ln_x = true;
    if (contains(name, "gate.weight")) gate = true;
    if (contains(name, "time_maa")) maa = true;
    if (contains(name, "att.time_decay")) {
      v4_decay = true;
      if (t.shape.size() > 1 && t.shape[1] > 1) decay_2d = true;
    }
  }
  if (v7) return ModelVersion::v7_0;
  if (maa) return ModelVersion::v6_0;
  if (ln_x) {
    if (decay_2d) return ModelVersion::v5_2;
    return gate ? ModelVersion::v5_1 : ModelVersion::v5_0;
  }
  if (v4_decay) return ModelVersion::v4;
  std::string found;
  size_t n = 0;
  for (const auto& [name, t] : tensors) {
    if (n++ == 8) {
      found += ", ...";
      break;
    }
    found += (found.empty() ? "" : ", ") + name + t.shape_str();
  }
  return Error{"not a recognised RWKV checkpoint (no att.r_k/k_k, time_maa, ln_x or time_decay "
               "tensors); found " + std::to_string(tensors.size()) + " tensors: " + found};
}

Expected<std::unique_ptr<Model>> load_model(TensorMap tensors, const std::string& where) {
  auto v = detect_version(tensors);
  if (!v) return Error{where + ": " + v.error().message};
  switch (*v) {
    case ModelVersion::v4: return load_v4(std::move(tensors), where);
    case ModelVersion::v5_0:
    case ModelVersion::v5_1:
    case ModelVersion::v5_2: return load_v5(std::move(tensors), where, *v);
    case ModelVersion::v6_0: return load_v6(std::move(tensors), where);
    case ModelVersion::v7_0: return load_v7(std::move(tensors), where);
  }
  return Error{where + ": unknown RWKV version"};
}

void State::add_slot(std::string name, std::vector<int64_t> shape, float init) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  slots.push_back({std::move(name), std::move(shape), data.size(), n, init, nullptr});
  data.resize(data.size() + n, init);
}

void State::reset() {
  for (const auto& s : slots) {
    if (s.init_values)
      std::copy(s.init_values->begin(), s.init_values->end(), data.begin() + s.offset);
    else
      std::fill(data.begin() + s.offset, data.begin() + s.offset + s.size, s.init);
  }
}

TensorMap State::to_tensors() const {
  TensorMap m;
  for (const auto& s : slots)
    m[s.name] = Tensor::from_f32(s.shape, std::vector<float>(data.begin() + s.offset,
                                                              data.begin() + s.offset + s.size));
  return m;
}

Status State::from_tensors(const TensorMap& t, const std::string& where) {
  for (const auto& s : slots) {
    auto it = t.find(s.name);
    if (it == t.end()) return Error{where + ": state tensor '" + s.name + "' is missing"};
    if (it->second.shape != s.shape) {
      Tensor want;
      want.shape = s.shape;
      return Error{where + ": state tensor '" + s.name + "' has shape " + it->second.shape_str() +
                   ", this model needs " + want.shape_str()};
    }
  }
  if (t.size() != slots.size())
    return Error{where + ": state file has " + std::to_string(t.size()) +
                 " tensors, this model's state has " + std::to_string(slots.size())};
  for (const auto& s : slots) {
    std::vector<float> v = to_f32(t.at(s.name));
    std::copy(v.begin(), v.end(), data.begin() + s.offset);
  }
  return Status::success();
}

}  // namespace wkv
