// Runs the built `wkv` binary (WKV_EXE, set by the test's CMake target) with arguments passed
// through the shell quoted, standard input from a string, and captures exit code and output.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace wkv::test {

struct CliResult {
  int code = -1;  // exit status; -1 when killed by a signal
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// `env` is prepended verbatim (e.g. "WKV_THREADS=2").
inline CliResult run_wkv(const std::vector<std::string>& args, const std::string& stdin_text = "",
                         const std::string& env = "") {
  const std::string dir = temp_dir();
  std::string cmd = env + (env.empty() ? "" : " ") + shell_quote(WKV_EXE);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const std::string in = dir + "/cli_stdin", out = dir + "/cli_stdout", err = dir + "/cli_stderr";
  std::ofstream(in) << stdin_text;
  cmd += " <" + shell_quote(in) + " >" + shell_quote(out) + " 2>" + shell_quote(err);
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

}  // namespace wkv::test
