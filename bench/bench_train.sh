#!/usr/bin/env bash
# Training throughput against this machine's limit: trains a fixed random-weight RWKV-7
# (`wkv init`, default L=4 x C=256, head 64, vocab 256) for a few steps of batch 8 x ctx 128 and
# reports the median per-step tokens/s from train_log.csv against the ceiling
#   ceiling tokens/s = measured fp32 GEMM FLOP/s / (6 x parameters)
# (forward 2 + backward 4 FLOPs per parameter per token; the WKV recurrence, norms and the
# optimizer are extra work the ceiling does not count). The FLOP/s come from bench/gemm_probe.cpp
# (OpenBLAS cblas_sgemm, 1024^3, median of 9 runs), compiled here. Runs: 1 process on all cores,
# 1 process on 1 thread, and (with mpirun) K processes x 1 thread each.
#   bench/bench_train.sh [WKV_BINARY]
# Environment: WKV_BENCH_LAYERS (4), WKV_BENCH_EMBD (256), WKV_BENCH_HEAD (64), WKV_BENCH_VOCAB
# (256), WKV_BENCH_BATCH (8), WKV_BENCH_CTX (128), WKV_BENCH_STEPS (20), WKV_BENCH_RANKS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
wkv=${1:-build/wkv}
[ -x "$wkv" ] || { echo "no wkv binary at $wkv" >&2; exit 1; }
L=${WKV_BENCH_LAYERS:-4}
C=${WKV_BENCH_EMBD:-256}
N=${WKV_BENCH_HEAD:-64}
V=${WKV_BENCH_VOCAB:-256}
B=${WKV_BENCH_BATCH:-8}
T=${WKV_BENCH_CTX:-128}
steps=${WKV_BENCH_STEPS:-20}
ranks=${WKV_BENCH_RANKS:-2}
cores=$(nproc)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# The GEMM probe, against the OpenBLAS the training products use.
blas_flags=$(pkg-config --cflags --libs openblas 2>/dev/null ||
  echo "-I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas")
# shellcheck disable=SC2086
${CXX:-c++} -O2 -std=c++17 bench/gemm_probe.cpp -o "$dir/gemm_probe" $blas_flags
gflops_all=$("$dir/gemm_probe" 1024 0 9)
gflops_one=$("$dir/gemm_probe" 1024 1 9)

# Model and data: random bytes (vocab 256) or the same bytes through the World tokenizer's
# byte fallback do not matter for speed; the text is long enough for every window.
model="$dir/init.safetensors"
"$wkv" init -o "$model" --n-layer "$L" --n-embd "$C" --head-size "$N" --vocab "$V" --seed 7 \
  >/dev/null
head -c $((B * (T + 1) * 64)) /dev/urandom | base64 -w 100 >"$dir/corpus.txt"
tok_args=()
[ "$V" = 256 ] && tok_args=(--tokenizer bytes)

# Median tokens/s over the steps: tokens per step / elapsed between consecutive CSV rows (the
# first step, which starts the clock after validation, and the last, which validates, drop out
# of the median).
median_tok_s() {
  awk -F, -v tps=$((B * T)) 'NR > 2 && $1 > 0 { d = $7 - prev; if (d > 0) print tps / d }
                              NR > 1 { prev = $7 }' "$1" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
                              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# run NAME GFLOPS COMMAND...: trains, prints one table row.
run() {
  local name=$1 gflops=$2
  shift 2
  local out="$dir/$name"
  "$@" train -m "$model" --data "$dir/corpus.txt" -o "$out" --batch "$B" --ctx "$T" \
    --steps "$steps" --warmup 1 --val-every 0 --val-batches 1 --val-fraction 0.05 \
    --log-every "$steps" "${tok_args[@]}" 2>"$dir/$name.log" ||
    { cat "$dir/$name.log" >&2; return 1; }
  local tps ceiling params
  tps=$(median_tok_s "$out/train_log.csv")
  # The trained parameters, from the header line of `wkv train`.
  params=$(sed -n 's/.*, \([0-9]*\) parameters,.*/\1/p' "$dir/$name.log" | head -1)
  [ -n "$params" ] || { echo "could not read the parameter count" >&2; return 1; }
  ceiling=$(awk -v g="$gflops" -v p="$params" 'BEGIN { printf "%.0f", g * 1e9 / (6 * p) }')
  awk -v n="$name" -v t="$tps" -v c="$ceiling" -v g="$gflops" \
    -v p="$params" 'BEGIN { printf "| %s | %d | %.0f | %.0f | %.3f | %.1f |\n", n, p, t, c, t / c, g }'
}

echo "model: L=$L C=$C head=$N vocab=$V; batch $B x ctx $T, $steps steps;" \
  "$cores cores; GEMM probe $gflops_all GFLOP/s (all cores), $gflops_one GFLOP/s (1 thread)"
echo
echo "| run | parameters | tokens/s (median step) | ceiling tokens/s | ratio | GEMM GFLOP/s used |"
echo "| --- | --- | --- | --- | --- | --- |"
run "1 process, $cores threads" "$gflops_all" env OPENBLAS_NUM_THREADS="$cores" "$wkv"
run "1 process, 1 thread" "$gflops_one" env OPENBLAS_NUM_THREADS=1 "$wkv"
if command -v mpirun >/dev/null && [ "$ranks" -gt 1 ]; then
  if [ $((B % ranks)) != 0 ]; then
    echo "(no MPI run: batch $B is not divisible by $ranks ranks)"
  else
    # K ranks x 1 thread on the same cores: the ceiling is the all-cores probe.
    run "$ranks processes (mpirun) x 1 thread" "$gflops_all" env OPENBLAS_NUM_THREADS=1 \
      OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none \
      OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_ALLOW_RUN_AS_ROOT=1 \
      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -n "$ranks" "$wkv" ||
      echo "(the MPI run failed; is wkv built with MPI?)"
  fi
else
  echo "(no mpirun: single-process runs only)"
fi
