// wkv: the command-line front end. One file per subcommand (cmd_*.cpp), each registering
// itself with WKV_COMMAND; this one dispatches.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli.hpp"

namespace {
void usage(std::ostream& os) {
  os << "usage: wkv <command> [options]   (wkv <command> --help for details)\ncommands:\n";
  for (const auto& c : wkv::cli::commands()) {
    std::string name = c.name;
    name.resize(std::max<size_t>(name.size() + 2, 12), ' ');
    os << "  " << name << c.help << "\n";
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "wkv: error: no command given\n";
    usage(std::cerr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(std::cout);
    return 0;
  }
  for (const auto& c : wkv::cli::commands())
    if (cmd == c.name) return c.fn(argc - 1, argv + 1);
  std::cerr << "wkv: error: unknown command '" << cmd << "'\n";
  usage(std::cerr);
  return 2;
}
