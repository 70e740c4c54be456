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
targets=$(grep -ho 'wkv_fuzz(fuzz_[a-z][a-z_]*' tests/fuzz/CMakeLists.txt | cut -d'(' -f2 | xargs)
cmake --build build-fuzz --target $targets make_format_seeds
mkdir -p build-fuzz/crashes build-fuzz/corpus/fuzz_pth build-fuzz/corpus/fuzz_safetensors \
  build-fuzz/corpus/fuzz_rwkvcpp build-fuzz/corpus/fuzz_gguf
# Small crafted seeds (fast to mutate) plus real files of each format.
build-fuzz/tests/fuzz/make_format_seeds build-fuzz/corpus/fuzz_pth build-fuzz/corpus/fuzz_safetensors \
  build-fuzz/corpus/fuzz_rwkvcpp build-fuzz/corpus/fuzz_gguf
seeds_for() {
  case "$1" in
    fuzz_pth) echo "$shared"/testdata/models/v7.0_random_bf16/model.pth ;;
    fuzz_safetensors) echo "$shared"/testdata/models/rwkvcpp_tiny_7v0_834K/expected.safetensors ;;
    fuzz_rwkvcpp) for m in 4v0-660K 5v1-730K 7v0-834K; do echo "$shared/testdata/rwkvcpp/tiny-rwkv-$m-Q5_0.bin"; done ;;
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
