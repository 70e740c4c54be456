#!/bin/bash
# Checks the SIMD levels (avx2, avx512, avx512vnni, amx) on another x86-64 machine, one that has the
# instruction sets this project's own machines lack, without building there.
#
#   scripts/simd_check.sh bundle OUT.tar.xz   here: the Release build's wkv, test_kernels and
#                                             test_model, bench_kernels from build-kern (if
#                                             built with -DWKV_BUILD_BENCH=ON), their shared
#                                             libraries, the golden data the tests read, and
#                                             this script (about 40 MB)
#   bash simd_check.sh run BUNDLE.tar.xz      there: unpacks into a temporary folder, prints
#                                             the CPU's features, runs the kernel tests and the
#                                             model goldens at every level, the kernel
#                                             benchmarks at 64 tokens and `wkv bench` on a
#                                             random 12 x 768 bf16 model per level
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  bundle)
    out=${2:?usage: simd_check.sh bundle OUT.tar.xz}
    shared=${WKV_SHARED:-$here/../shared}
    d=$(mktemp -d)
    trap 'rm -rf "$d"' EXIT
    mkdir -p "$d/bin" "$d/lib" "$d/shared/testdata/models" "$d/shared/testdata/rwkvcpp"
    cp "$here/build/wkv" "$here/build/tests/kernels/test_kernels" \
      "$here/build/tests/model/test_model" "$0" "$d/bin/" || exit 1
    [ -x "$here/build-kern/bench/bench_kernels" ] && cp "$here/build-kern/bench/bench_kernels" "$d/bin/"
    # every shared library but the C library's own (the other machine has a compatible one)
    for b in "$d"/bin/*; do ldd "$b" 2>/dev/null; done | awk '/=>/{print $3}' | sort -u |
      grep -v -E '/(libc|libm|libpthread|libdl|librt)\.so|ld-linux' |
      while read -r l; do cp -L "$l" "$d/lib/"; done
    # the goldens of every version; rwkv.cpp's files for v6 and v7 only (size)
    cp "$shared/testdata/README.md" "$d/shared/testdata/"
    cp "$shared"/testdata/models/*.json "$shared/testdata/models/README.md" "$d/shared/testdata/models/"
    for m in v4_random v5.0_random v5.1_random v5.2_random v6.0_random v6.0_random_bf16 \
      v7.0_random v7.0_random_bf16 rwkvcpp_tiny_6v0_3m rwkvcpp_tiny_7v0_834K; do
      cp -r "$shared/testdata/models/$m" "$d/shared/testdata/models/"
    done
    cp "$shared"/testdata/rwkvcpp/*7v0* "$shared"/testdata/rwkvcpp/*6v0* "$d/shared/testdata/rwkvcpp/"
    tar -C "$d" -cf - . | xz -T0 -6 > "$out" || exit 1
    ls -la "$out"
    ;;
  run)
    bundle=$(readlink -f "${2:?usage: simd_check.sh run BUNDLE.tar.xz}")
    d=$(mktemp -d)
    cd "$d" && tar xJf "$bundle" || exit 1
    export LD_LIBRARY_PATH=$d/lib WKV_SHARED=$d/shared
    log=${OUT:-$d}
    echo "== cpu"
    grep -m1 "model name" /proc/cpuinfo; nproc; uname -r
    grep -o -w 'avx512[a-z_0-9]*\|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
    for k in avx2 avx512 avx512vnni amx; do
      echo "== test_kernels WKV_KERNELS=$k"
      WKV_KERNELS=$k timeout 300 bin/test_kernels > "$log/test_kernels_$k.log" 2>&1; echo "rc=$?"
      grep -E "^\[  FAILED|PASSED|Failure|Which is|Expected|at [0-9]" "$log/test_kernels_$k.log" | head -30
      echo "== test_model WKV_KERNELS=$k"
      # (the rwkv.cpp files of v4 and v5 are not in the bundle)
      WKV_KERNELS=$k timeout 300 bin/test_model --gtest_filter='-*4v0*:*5v1*:*5v2*:*TinyV4*:*DetectedForEveryTestCheckpoint' \
        > "$log/test_model_$k.log" 2>&1; echo "rc=$?"
      grep -E "^\[  FAILED|PASSED|seq: max" "$log/test_model_$k.log" | head -30
    done
    if [ -x bin/bench_kernels ]; then
      echo "== bench_kernels, 768 x 768 at 64 tokens, one thread"
      timeout 300 bin/bench_kernels --benchmark_min_time=0.1 \
        --benchmark_filter='matmul/(avx2|avx512|amx)/(f32|bf16|f16|q8_0|q4_0|q4_k)/768/64/0' 2>&1 |
        grep -E "^matmul|Run on"
    fi
    echo "== wkv bench, random 12 x 768 bf16, 512-token prompt"
    bin/wkv init --init random -o "$d/m.safetensors" --n-layer 12 --n-embd 768 --vocab 65536 \
      --dtype bf16 --seed 7 > /dev/null || { echo "wkv init failed"; exit 1; }
    for k in avx2 avx512 amx; do
      for t in 1 4; do
        echo "$k threads=$t $(WKV_KERNELS=$k timeout 120 bin/wkv bench -m "$d/m.safetensors" \
          --prompt 512 --gen 16 --threads $t --json)"
      done
    done
    ;;
  *)
    sed -n '2,16p' "$0"
    exit 2
    ;;
esac
