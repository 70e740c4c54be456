// Finding the bundled model (see default_model.hpp).
#include "default_model.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace wkv::cli {

Expected<std::string> default_model_path() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("WKV_MODEL"); env && *env) {
    if (!fs::exists(env)) return Error{std::string("$WKV_MODEL names ") + env + ", which does not exist"};
    return std::string(env);
  }
  std::vector<fs::path> tried;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path dir = exe.parent_path();
    tried.push_back(dir.parent_path() / "models" / kBundledModelName);
    tried.push_back(dir / "models" / kBundledModelName);
    tried.push_back(dir.parent_path() / "share" / "wkv" / kBundledModelName);
  }
#ifdef WKV_SOURCE_DIR
  tried.push_back(fs::path(WKV_SOURCE_DIR) / "models" / kBundledModelName);
#endif
  std::string list;
  for (const fs::path& p : tried) {
    if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
    list += (list.empty() ? "" : ", ") + p.string();
  }
  return Error{"no model given (-m) and the bundled model " + std::string(kBundledModelName) +
               " was not found (looked in: " + list + "); pass -m MODEL or set $WKV_MODEL"};
}

Status use_default_model(std::string& model) {
  if (!model.empty()) return Status::success();
  auto p = default_model_path();
  if (!p) return p.error();
  std::fprintf(stderr, "wkv: using the bundled model %s\n", p->c_str());
  model = std::move(*p);
  return Status::success();
}

}  // namespace wkv::cli
