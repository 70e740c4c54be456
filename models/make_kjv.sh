#!/usr/bin/env bash
# Rebuilds models/kjv-L4-D128.safetensors, the small model wkv ships and uses by default: a
# byte-level RWKV-7 (4 layers, width 128, head size 64, 1.03 M parameters) trained by
# `wkv train` from the official initialisation on the King James Bible from Debian's
# bible-kjv-text (public domain), one verse per line. About 45 minutes on two busy vCPUs.
# Usage: bash models/make_kjv.sh [path/to/wkv]   (apt-get install bible-kjv first)
set -euo pipefail
cd "$(dirname "$0")/.."
wkv=${1:-build/wkv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v bible >/dev/null || { echo "make_kjv: needs the 'bible' program (apt-get install bible-kjv)" >&2; exit 1; }
bible -l1000 "Gen1:1-Rev22:21" > "$work/kjv.txt"   # 4,298,239 bytes, 34,669 lines
"$wkv" init -o "$work/init.safetensors" --n-layer 4 --n-embd 128 --head-size 64 --vocab 256 --seed 1
"$wkv" train -m "$work/init.safetensors" --data "$work/kjv.txt" --tokenizer bytes -o "$work/run" \
  --batch 8 --ctx 256 --steps 1400 --lr-init 2e-3 --lr-final 1e-4 --warmup 50 \
  --val-fraction 0.02 --val-every 100 --val-batches 8 --save-every 200 --log-every 20 --seed 1
cp "$work/run/rwkv-final.safetensors" models/kjv-L4-D128.safetensors.tmp
mv models/kjv-L4-D128.safetensors.tmp models/kjv-L4-D128.safetensors
cp "$work/run/train_log.csv" models/kjv-L4-D128.train_log.csv
cp "$work/run/loss.svg" models/kjv-L4-D128.loss.svg 2>/dev/null || true
echo "make_kjv: wrote models/kjv-L4-D128.safetensors" >&2
