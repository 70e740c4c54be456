#!/usr/bin/env bash
# Quantization quality: perplexity of each trained tiny byte-level model (rwkv.cpp's test models,
# in ../shared/testdata, and the bundled models/kjv-L4-D128) in f32 and quantized with
# `wkv quantize` to every block type, over an
# English text found on every Debian system (default: the first 32 KiB of the GPL-3 text in
# /usr/share/common-licenses; nothing is committed). Prints a Markdown table: perplexity and its
# change relative to f32, plus the GGUF sizes. The k-quants apply only to matrices whose rows
# are a multiple of 256 (the FFN value of these models); the others take the fallback type.
#   bench/bench_quality.sh [WKV] [TEXT_FILE] [BYTES] [CTX]
set -euo pipefail
cd "$(dirname "$0")/.."
wkv=${1:-build/wkv}
text=${2:-/usr/share/common-licenses/GPL-3}
bytes=${3:-32768}
ctx=${4:-256}
shared=${WKV_SHARED:-../shared}
types=${WKV_QUALITY_TYPES:-"q8_0 q6_k q5_1 q5_k q5_0 q4_1 q4_k q4_0 q3_k q2_k"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c "$bytes" "$text" >"$tmp/text.txt"
ppl() { "$wkv" perplexity -m "$1" --text "$tmp/text.txt" --ctx "$ctx" --json |
          python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["perplexity"])'; }
echo "text: $text, first $(wc -c <"$tmp/text.txt") bytes; ctx $ctx, state carried"
echo
printf '| model | f32 |'; for t in $types; do printf ' %s |' "$t"; done; echo
printf '| --- | --- |'; for t in $types; do printf ' --- |'; done; echo
sizes=""
for m in 4v0_660K 5v2_730K 7v0_834K kjv-L4-D128; do
  src="$shared/testdata/models/rwkvcpp_tiny_$m/model.pth"
  [ "$m" = kjv-L4-D128 ] && src="models/kjv-L4-D128.safetensors"
  "$wkv" convert -m "$src" -o "$tmp/$m-f32.gguf" 2>/dev/null
  base=$(ppl "$tmp/$m-f32.gguf")
  row="| $m | $base |"
  srow="| $m | $(stat -c %s "$tmp/$m-f32.gguf") |"
  for t in $types; do
    "$wkv" quantize -m "$src" -o "$tmp/$m-$t.gguf" --type "$t" 2>/dev/null
    p=$(ppl "$tmp/$m-$t.gguf")
    row="$row $p ($(python3 -c "print('%+.2f%%' % (100 * ($p / $base - 1)))")) |"
    srow="$srow $(stat -c %s "$tmp/$m-$t.gguf") |"
  done
  echo "$row"
  sizes="$sizes$srow"$'\n'
done
echo
echo "GGUF sizes in bytes (head and embedding kept in f32):"
echo
printf '| model | f32 |'; for t in $types; do printf ' %s |' "$t"; done; echo
printf '| --- | --- |'; for t in $types; do printf ' --- |'; done; echo
printf '%s' "$sizes"
