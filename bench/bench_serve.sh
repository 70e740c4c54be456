#!/usr/bin/env bash
# Serving benchmark (not a test): aggregate generated tokens/s and time-to-first-token of
# `wkv serve` at 1, 4, 16 and 64 concurrent streaming requests on a random-weight RWKV-7 at a
# real size (default 12 layers x 768, vocab 65536), and the ratio of each to a single stream.
#   bench/bench_serve.sh [WKV_BINARY] [TOKENS_PER_STREAM] [DTYPE] [CONCURRENCY...]
# Environment: WKV_BENCH_LAYERS, WKV_BENCH_EMBD (model size), WKV_BENCH_TEMPERATURE (default 1;
# 0 = greedy, which takes the sampler's sort over the vocabulary out of the measurement). Needs python3 (standard library).
set -euo pipefail
cd "$(dirname "$0")/.."
wkv=${1:-build/wkv}
[ -x "$wkv" ] || wkv=build/apps/wkv/wkv
ntok=${2:-64}
dtype=${3:-bf16}
shift $(( $# < 3 ? $# : 3 ))
levels=${*:-1 4 16 64}
L=${WKV_BENCH_LAYERS:-12}
C=${WKV_BENCH_EMBD:-768}
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
model="$dir/rwkv7-L${L}-D${C}-${dtype}.safetensors"
"$wkv" init --init random -o "$model" --n-layer "$L" --n-embd "$C" --vocab 65536 --dtype "$dtype" --seed 7 >/dev/null
max=0
for c in $levels; do (( c > max )) && max=$c; done
"$wkv" serve -m "$model" --tokenizer bytes --port 0 --parallel "$max" --queue "$max" \
  --cache-mb 256 2>"$dir/err" &
pid=$!
for _ in $(seq 1 600); do grep -q 'listening on' "$dir/err" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$dir/err" | head -1)
[ -n "$url" ] || { cat "$dir/err" >&2; exit 1; }
echo "model: L$L D$C vocab 65536 $dtype; $ntok tokens per stream; $(nproc) CPUs; server $url"
python3 - "$url" "$ntok" $levels <<'PY'
import http.client, json, os, sys, threading, time, statistics
url, ntok, levels = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3:]]
temp = float(os.environ.get("WKV_BENCH_TEMPERATURE", "1.0"))
host, port = url.split("//")[1].split(":")
def one(i, out):
    body = json.dumps({"prompt": "Stream %d: The quick brown fox jumps over the lazy dog." % i,
                       "max_tokens": ntok, "stream": True, "temperature": temp, "seed": i,
                       "logit_bias": {"0": -100}, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection(host, int(port), timeout=3600)
    t0 = time.time()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    ttft, tokens, buf = None, 0, b""
    while True:
        chunk = r.read1(65536)
        if not chunk: break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            data = ev[6:]
            if data == b"[DONE]": continue
            j = json.loads(data)
            if j.get("usage"): tokens = j["usage"]["completion_tokens"]
            elif ttft is None and j["choices"] and j["choices"][0].get("text"): ttft = time.time() - t0
    out[i] = (ttft or float("nan"), tokens, time.time() - t0)
base = None
print("%8s %12s %10s %14s %14s" % ("streams", "tok/s total", "x single", "TTFT median s", "TTFT max s"))
for n in levels:
    out = [None] * n
    ts = [threading.Thread(target=one, args=(i, out)) for i in range(n)]
    t0 = time.time()
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.time() - t0
    total = sum(o[1] for o in out)
    rate = total / wall
    base = base or rate
    ttfts = [o[0] for o in out]
    print("%8d %12.1f %10.2f %14.3f %14.3f" % (n, rate, rate / base, statistics.median(ttfts), max(ttfts)))
# The prefix-state cache: the same long system prompt twice, with different questions.
system = "You are a helpful assistant. " * 70
def ask(q):
    body = json.dumps({"messages": [{"role": "system", "content": system}, {"role": "user", "content": q}],
                       "max_tokens": 1, "temperature": 0})
    conn = http.client.HTTPConnection(host, int(port), timeout=3600)
    t0 = time.time()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    j = json.loads(conn.getresponse().read())
    return time.time() - t0, j["usage"]["prompt_tokens"], j["usage"]["prompt_tokens_details"]["cached_tokens"]
a, b = ask("What is one?"), ask("What is two?")
print("cache: first request %.3f s (%d prompt tokens, %d cached); second %.3f s (%d cached): %.1fx faster"
      % (a[0], a[1], a[2], b[0], b[2], a[0] / b[0]))
PY
curl -s "$url/metrics" | grep -E '^wkv_cache_(hits|tokens_skipped)_total' || true
