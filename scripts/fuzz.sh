#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each one for
# SECONDS (default 60), seeded with valid files from ../shared. Crashes are saved in
# build-fuzz/crashes/; keep each as a regression test.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shared=${WKV_SHARED:-../shared}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWKV_FUZZ=ON -DWKV_BUILD_TESTS=OFF -DWKV_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz
mkdir -p build-fuzz/crashes
seeds_for() {
  case "$1" in
    fuzz_pth) ls "$shared"/testdata/models/*/model.pth ;;
    fuzz_safetensors) ls "$shared"/testdata/models/*/expected.safetensors ;;
    fuzz_vocab) head -n 2000 "$shared"/vocab/rwkv_vocab_v20230424.txt >build-fuzz/vocab_seed.txt
                echo build-fuzz/vocab_seed.txt ;;
    *) true ;;
  esac
}
status=0
for exe in build-fuzz/tests/fuzz/fuzz_*; do
  [ -x "$exe" ] || continue
  name=$(basename "$exe")
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  for f in $(seeds_for "$name"); do cp -f "$f" "$corpus/" 2>/dev/null || true; done
  echo "fuzz: $name for ${secs}s"
  if ! "$exe" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4194304 \
      -artifact_prefix="build-fuzz/crashes/$name-" "$corpus" >"build-fuzz/$name.log" 2>&1; then
    echo "fuzz: $name FAILED; see build-fuzz/$name.log and build-fuzz/crashes/" >&2
    tail -n 30 "build-fuzz/$name.log" >&2
    status=1
  else
    grep -E '^Done|#[0-9]+.*DONE' "build-fuzz/$name.log" | tail -n 1 || true
  fi
done
exit $status
