#!/usr/bin/env bash
# CPU speed against this machine's limits: builds random-weight RWKV-7 models with `wkv init`
# (12 x 768 and 24 x 1024, vocab 65536) in f32 and bf16, plus any `wkv quantize` type (default
# q8_0 / q5_1 / q4_0; e.g. q4_k, q6_k, q4_k_m; quantized from the bf16 checkpoint), runs
# `wkv bench --json` at 1 and 2 threads and prints a markdown table: tok/s and each as a
# fraction of its measured ceiling.
#   bench/bench_cpu.sh [WKV_BINARY] [SIZES] [DTYPES]
#   e.g. bench/bench_cpu.sh build/wkv "12x768" "f32 bf16 q8_0"
# Environment: WKV_BENCH_PROMPT (default 128), WKV_BENCH_GEN (64), WKV_BENCH_THREADS ("1 2").
set -euo pipefail
cd "$(dirname "$0")/.."
wkv=${1:-build/wkv}
[ -x "$wkv" ] || { echo "no wkv binary at $wkv" >&2; exit 1; }
sizes=${2:-"12x768 24x1024"}
dtypes=${3:-"f32 bf16 q8_0 q5_1 q4_0"}
prompt=${WKV_BENCH_PROMPT:-128}
gen=${WKV_BENCH_GEN:-64}
threads=${WKV_BENCH_THREADS:-"1 2"}
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
have_quantize=0
"$wkv" quantize --help >/dev/null 2>&1 && have_quantize=1

echo "| model | dtype | threads | prompt tok/s | of ceiling | gen tok/s | of ceiling | GB/s probe | GFLOP/s probe | peak RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for size in $sizes; do
  L=${size%x*}
  C=${size#*x}
  for dtype in $dtypes; do
    case $dtype in
      f32|bf16)
        model="$dir/L${L}-D${C}-${dtype}.safetensors"
        "$wkv" init --init random -o "$model" --n-layer "$L" --n-embd "$C" --vocab 65536 --dtype "$dtype" \
          --seed 7 >/dev/null ;;
      *)
        [ $have_quantize = 1 ] || { echo "(skipping $dtype: no wkv quantize)" >&2; continue; }
        # from a bf16 checkpoint, as the official ones are: the tensors quantize keeps (the head
        # unless asked, the small ones) stay bf16, as they would in a user's file
        src="$dir/L${L}-D${C}-bf16-src.safetensors"
        [ -f "$src" ] || "$wkv" init --init random -o "$src" --n-layer "$L" --n-embd "$C" --vocab 65536 \
          --dtype bf16 --seed 7 >/dev/null
        model="$dir/L${L}-D${C}-${dtype}.gguf"
        "$wkv" quantize -m "$src" -o "$model" --type "$dtype" >/dev/null 2>&1 ||
          { echo "(skipping $dtype: wkv quantize failed)" >&2; continue; } ;;
    esac
    for t in $threads; do
      j=$("$wkv" bench -m "$model" --prompt "$prompt" --gen "$gen" --threads "$t" --json)
      echo "$j" >> "$dir/all.jsonl"
      # the requested name: a preset such as q4_k_m reports its matrices' type as .dtype
      echo "$j" | jq -r --arg m "${L}x${C}" --arg d "$dtype" '"| \($m) | \($d) | \(.threads) | \(.prompt_tok_s*10|round/10) | \(.prompt_fraction*100|round)% of \(.prompt_ceiling_tok_s|round) | \(.gen_tok_s*10|round/10) | \(.gen_fraction*100|round)% of \(.gen_ceiling_tok_s*10|round/10) | \(.bandwidth_gb_s*100|round/100) | \(.gemm_gflop_s*10|round/10) | \(.peak_rss_mb|round) |"'
    done
    # quantized models are re-created per dtype; keep the disk use small
    [ "${model##*.}" = gguf ] && rm -f "$model"
  done
  rm -f "$dir"/L"${L}"-D"${C}"-*.safetensors
done
if [ -n "${WKV_BENCH_JSON:-}" ]; then cp "$dir/all.jsonl" "$WKV_BENCH_JSON"; fi
