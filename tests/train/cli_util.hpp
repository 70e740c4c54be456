// Runs the built `wkv` binary (WKV_EXE) for the training CLI tests.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace wkv::train::test {

struct CliResult {
  int code = -1;
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline CliResult run_wkv(const std::vector<std::string>& args) {
  const std::string dir = wkv::test::temp_dir();
  const std::string out = dir + "/cli_stdout", err = dir + "/cli_stderr";
  std::string cmd = shell_quote(WKV_EXE);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " </dev/null >" + shell_quote(out) + " 2>" + shell_quote(err);
  CliResult r;
  const int st = std::system(cmd.c_str());
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::stringstream so, se;
  so << std::ifstream(out).rdbuf();
  se << std::ifstream(err).rdbuf();
  r.out = so.str();
  r.err = se.str();
  return r;
}

}  // namespace wkv::train::test
