// The training CLI tests use the shared runner of the built `wkv` binary.
#pragma once

#include "wkv_runner.hpp"

namespace wkv::train::test {
using CliResult = wkv::test::CliResult;
using wkv::test::run_wkv;
using wkv::test::shell_quote;

// The fields of one CSV line (train_log.csv).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == sep)
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}
}  // namespace wkv::train::test
