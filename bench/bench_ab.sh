#!/usr/bin/env bash
# A/B generation and prompt speed of two wkv binaries on the same models, alternating runs
# in one session (shared machines drift: only same-run ratios mean anything), medians.
#   bench/bench_ab.sh OLD_WKV NEW_WKV MODEL [MODEL...]
# Environment: WKV_AB_RUNS (default 5), WKV_BENCH_THREADS ("1 2"), WKV_BENCH_PROMPT (16),
# WKV_BENCH_GEN (64).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OLD_WKV NEW_WKV MODEL [MODEL...]" >&2; exit 2; }
old=$1 new=$2
shift 2
for b in "$old" "$new"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 1; }; done
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)" >&2; exit 1; }
runs=${WKV_AB_RUNS:-5}
threads=${WKV_BENCH_THREADS:-"1 2"}
prompt=${WKV_BENCH_PROMPT:-16}
gen=${WKV_BENCH_GEN:-64}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "| model | threads | old gen tok/s | new gen tok/s | new/old | old prompt tok/s | new prompt tok/s | new/old |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for m in "$@"; do
  for t in $threads; do
    og=() ng=() op=() np=()
    for ((i = 0; i < runs; i++)); do
      for side in old new; do
        b=$old; [ $side = new ] && b=$new
        j=$("$b" bench -m "$m" --prompt "$prompt" --gen "$gen" --threads "$t" --json)
        g=$(jq -r .gen_tok_s <<<"$j") p=$(jq -r .prompt_tok_s <<<"$j")
        if [ $side = old ]; then og+=("$g"); op+=("$p"); else ng+=("$g"); np+=("$p"); fi
      done
    done
    mog=$(printf '%s\n' "${og[@]}" | median) mng=$(printf '%s\n' "${ng[@]}" | median)
    mop=$(printf '%s\n' "${op[@]}" | median) mnp=$(printf '%s\n' "${np[@]}" | median)
    awk -v m="$(basename "$m")" -v t="$t" -v a="$mog" -v b="$mng" -v c="$mop" -v d="$mnp" \
      'BEGIN {printf "| %s | %s | %.1f | %.1f | %.2f× | %.1f | %.1f | %.2f× |\n", m, t, a, b, b/a, c, d, d/c}'
  done
done
