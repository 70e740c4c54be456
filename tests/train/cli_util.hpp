// The training CLI tests use the shared runner of the built `wkv` binary.
#pragma once

#include "wkv_runner.hpp"

namespace wkv::train::test {
using CliResult = wkv::test::CliResult;
using wkv::test::run_wkv;
using wkv::test::shell_quote;
}  // namespace wkv::train::test
