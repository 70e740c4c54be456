#!/usr/bin/env bash
# End-to-end generation benchmark: prompt and generation tokens/s and peak resident memory of
# `wkv generate` on a random-weight RWKV-7 (default 12 layers x 768, vocab 65536), generating
# a short and a long run: peak memory must not grow with the number of tokens.
#   bench/bench_generate.sh [WKV_BINARY] [N_SHORT] [N_LONG] [DTYPE]
set -euo pipefail
cd "$(dirname "$0")/.."
wkv=${1:-build/wkv}
[ -x "$wkv" ] || wkv=build/apps/wkv/wkv
short=${2:-1000}
long=${3:-20000}
dtype=${4:-bf16}
L=${WKV_BENCH_LAYERS:-12}
C=${WKV_BENCH_EMBD:-768}
vocab=${WKV_VOCAB:-../shared/vocab/rwkv_vocab_v20230424.txt}
tok=(--tokenizer bytes)
[ -f "$vocab" ] && tok=(--vocab "$vocab")
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
model="$dir/rwkv7-L${L}-D${C}-${dtype}.safetensors"
"$wkv" init --init random -o "$model" --n-layer "$L" --n-embd "$C" --vocab 65536 --dtype "$dtype" --seed 7
prompt=$(printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 1 12))
echo "model: L$L D$C vocab 65536 $dtype  ($(du -h "$model" | cut -f1))"
for n in $short $long; do
  /usr/bin/time -f '%M' -o "$dir/rss" "$wkv" generate -m "$model" "${tok[@]}" -p "$prompt" \
    -n "$n" --ignore-eos --seed 1 --temperature 1 --top-p 0.9 >/dev/null 2>"$dir/err"
  summary=$(grep '^wkv: prompt' "$dir/err")
  rss_mb=$(( $(cat "$dir/rss") / 1024 ))
  echo "n=$n  $summary  peak_rss=${rss_mb} MB"
done
