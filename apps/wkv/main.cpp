// wkv: the command-line front end. One file per subcommand; this one dispatches.
#include <cstring>
#include <iostream>

#include "cli.hpp"

namespace {
const char* kUsage =
    "usage: wkv <command> [options]   (wkv <command> --help for details)\n"
    "commands:\n"
    "  generate    generate text from a prompt, streamed to stdout\n"
    "  info        print a model's version and sizes as JSON\n"
    "  logits      write the logits of a token sequence to a safetensors file\n"
    "  tokenize    text -> JSON array of token ids\n"
    "  detokenize  token ids -> bytes on stdout\n"
    "  init        write a random RWKV-7 checkpoint of given sizes (benchmarks, tests)\n";
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "wkv: error: no command given\n" << kUsage;
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  using Fn = int (*)(int, char**);
  const std::pair<const char*, Fn> table[] = {
      {"info", wkv::cli::cmd_info},         {"tokenize", wkv::cli::cmd_tokenize},
      {"detokenize", wkv::cli::cmd_detokenize}, {"logits", wkv::cli::cmd_logits},
      {"generate", wkv::cli::cmd_generate}, {"init", wkv::cli::cmd_init},
  };
  for (const auto& [name, fn] : table)
    if (cmd == name) return fn(argc - 1, argv + 1);
  std::cerr << "wkv: error: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}
