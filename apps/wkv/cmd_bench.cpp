// wkv bench -m MODEL [--prompt 512] [--gen 128] [--threads N] [--json]: prompt and generation
// tokens/s, peak RSS, and the ceilings for this model on this machine, measured on the spot:
//   gen_ceiling_tok_s    = stream-read bandwidth / bytes of weights read per generated token
//   prompt_ceiling_tok_s = best matmul FLOP/s / (2 * parameters multiplied per prompt token)
// The embedding is not counted (one row per token); every other matrix is read once per
// generated token; the head is not multiplied per prompt token (only the last needs logits).
// Peak RSS is taken before the probes allocate their buffers.
#include <immintrin.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "cli.hpp"
#include "core/cpu_features.hpp"
#include "core/quant.hpp"
#include "core/thread_pool.hpp"
#include "formats/formats.hpp"
#include "kernels/kernels.hpp"
#include "sample/sampler.hpp"

namespace wkv::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Sums of n uint64 words at p (n a multiple of 16). The scalar loop is the baseline build's;
// the AVX2 one reads four interleaved streams of 256-bit loads, as the matmul kernels read
// their weight rows, so the probe is not held back by the loop itself.
uint64_t sum_scalar(const uint64_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i < n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

__attribute__((target("avx2"))) uint64_t sum_avx2(const uint64_t* p, size_t n) {
  const size_t q = n / 4 / 16 * 16;  // words per stream, whole 128-byte steps
  const __m256i* a = reinterpret_cast<const __m256i*>(p);
  const __m256i* b = reinterpret_cast<const __m256i*>(p + q);
  const __m256i* c = reinterpret_cast<const __m256i*>(p + 2 * q);
  const __m256i* d = reinterpret_cast<const __m256i*>(p + 3 * q);
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i < q / 4; i += 4) {
    for (size_t k = 0; k < 4; ++k) {
      s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(a + i + k));
      s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(b + i + k));
      s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(c + i + k));
      s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(d + i + k));
    }
  }
  const __m256i t = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), t);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_scalar(p + 4 * q, n - 4 * q);
}

// Stream-read bandwidth in bytes/s with `threads` threads: a buffer far larger than any
// last-level cache, summed in chunks; the median of several passes, for the scalar loop and
// (where the CPU has it) the AVX2 one, whichever reads faster.
double bandwidth_probe(size_t threads, size_t mb) {
  const size_t bytes = mb << 20;
  const size_t n = bytes / 8;
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i * 0x9e3779b97f4a7c15ull;  // touch every page
  ThreadPool pool(threads);
  const size_t chunks = 64, per = n / chunks / 16 * 16;
  std::vector<uint64_t> sums(chunks);
  double best = 0;
  const bool avx2 = cpu_features().avx2;
  for (int method = 0; method < (avx2 ? 2 : 1); ++method) {
    std::vector<double> rates;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = Clock::now();
      pool.run(chunks, [&](size_t c) {
        const uint64_t* p = buf.data() + c * per;
        sums[c] = method == 0 ? sum_scalar(p, per) : sum_avx2(p, per);
      });
      rates.push_back(static_cast<double>(chunks * per * 8) / seconds_since(t0));
    }
    best = std::max(best, median(rates));
  }
  uint64_t all = 0;
  for (uint64_t s : sums) all += s;
  if (all == 42) std::fputc(' ', stderr);  // keeps the sums alive
  return best;
}

// FLOP/s of our matmul for weights of dtype `dt` on a [4C, C] matrix times 64 tokens.
double gemm_probe(DType dt, size_t C) {
  C = std::max<size_t>(64, C / 32 * 32);
  const size_t rows = 4 * C, T = 64;
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> w(rows * C), x(T * C), y(T * rows);
  for (auto& v : w) v = nd(g) * 0.05f;
  for (auto& v : x) v = nd(g);
  std::vector<unsigned char> W(dtype_bytes(dt, C) * rows);
  for (size_t r = 0; r < rows; ++r) {
    unsigned char* dst = W.data() + r * dtype_bytes(dt, C);
    const float* src = w.data() + r * C;
    if (dt == DType::f32) {
      std::memcpy(dst, src, C * 4);
    } else if (dt == DType::bf16 || dt == DType::f16) {
      for (size_t i = 0; i < C; ++i) {
        const uint16_t h = dt == DType::bf16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    } else {
      quant::quantize_row(dt, src, dst, C);
    }
  }
  kernels::matmul(dt, W.data(), x.data(), y.data(), rows, C, T);  // warm-up
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    kernels::matmul(dt, W.data(), x.data(), y.data(), rows, C, T);
    rates.push_back(2.0 * static_cast<double>(rows * C * T) / seconds_since(t0));
  }
  return median(rates);
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // kB on Linux
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  CLI::App app{"Measure prompt and generation speed against this machine's limits.", "wkv bench"};
  std::string model;
  int prompt = 512, gen = 128, threads = 0, probe_mb = 512;
  bool json = false;
  app.add_option("-m,--model", model, "checkpoint (.pth, .safetensors, .bin, ...)")->required();
  app.add_option("--prompt", prompt, "prompt tokens (one forward_seq)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--gen", gen, "generated tokens (forward_one each)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--threads", threads, "threads (0 = all cores available)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--probe-mb", probe_mb, "bandwidth probe buffer, MiB (far above the LLC)")
      ->check(CLI::Range(8, 1 << 16));
  app.add_flag("--json", json, "print one JSON object");
  return run(app, argc, argv, [&] {
    kernels::set_threads(static_cast<size_t>(threads));
    const size_t nthreads = kernels::threads();
    auto m = load_model_file(model);
    if (!m) return fail(m.error());
    Model& net = **m;
    const Hparams& hp = net.hparams();

    // Bytes and parameters of the matrices read per token (all 2-D tensors but the embedding),
    // in their stored dtypes; the dtype holding most bytes of the layers' matrices (the head
    // often stays f32 in quantized files) names the model.
    auto tensors = load_tensors(model);
    if (!tensors) return fail(tensors.error());
    double weight_bytes = 0, matmul_params = 0;
    std::map<DType, double> by_dtype;
    for (const auto& [name, t] : *tensors) {
      if (t.shape.size() < 2 || name == "emb.weight") continue;
      weight_bytes += static_cast<double>(t.nbytes());
      // The prompt computes the head only for its last token: not per prompt token.
      if (name != "head.weight") matmul_params += static_cast<double>(t.numel());
      if (name != "head.weight") by_dtype[t.dtype] += static_cast<double>(t.nbytes());
    }
    DType main_dtype = DType::f32;
    double most = -1;
    for (const auto& [dt, b] : by_dtype)
      if (b > most) most = b, main_dtype = dt;
    tensors->clear();  // release the second mapping

    const int V = hp.vocab_size;
    std::mt19937 g(7);
    std::uniform_int_distribution<int> pick(1, std::max(1, V - 1));
    std::vector<int32_t> ids(static_cast<size_t>(prompt));
    for (auto& id : ids) id = pick(g);
    std::vector<float> logits(static_cast<size_t>(V));

    {  // warm-up: page in the weights, size the buffers (a whole chunk's: the products take
       // another path and the scratch grows from 16 tokens on, which a 128-token prompt at 2
       // threads paid as up to a quarter of its time)
      State s = net.new_state();
      net.forward_seq(std::span<const int32_t>(ids.data(), std::min<size_t>(ids.size(), 128)), s,
                      logits.data(), Logits::last);
      net.forward_one(ids[0], s, logits.data());
    }
    State state = net.new_state();
    auto t0 = Clock::now();
    net.forward_seq(ids, state, logits.data(), Logits::last);
    const double prompt_s = seconds_since(t0);
    t0 = Clock::now();
    int32_t tok = ids.back();
    SamplerConfig greedy;  // the next token as generate picks it at temperature 0
    greedy.temperature = 0.0f;
    Sampler pick_next(greedy);
    for (int i = 0; i < gen; ++i) {
      net.forward_one(tok, state, logits.data());
      tok = pick_next.sample_logits(logits);
    }
    const double gen_s = seconds_since(t0);

    const double rss = peak_rss_mb();  // before the probes' buffers
    const double bw = bandwidth_probe(nthreads, static_cast<size_t>(probe_mb));
    double flops = gemm_probe(DType::f32, static_cast<size_t>(hp.n_embd));
    if (main_dtype != DType::f32 && kernels::matmul_supports(main_dtype))
      flops = std::max(flops, gemm_probe(main_dtype, static_cast<size_t>(hp.n_embd)));

    // The arithmetic of the main dtype's prompt products on this table (the opt-in modes
    // change the GEMM probe's ceiling with it, so the output says which one ran).
    const kernels::Table& tab = kernels::table();
    const size_t pt = static_cast<size_t>(prompt);
    const char* prompt_math = tab.rounds_x_bf16 && tab.rounds_x_bf16(main_dtype, pt) ? "bf16"
                              : tab.quantizes_x && tab.quantizes_x(main_dtype, pt)   ? "int8"
                              : tab.packed_split_bf16 && pt >= tab.packed_min_t      ? "split-bf16"
                                                                                     : "fp32";
    const double prompt_tok_s = prompt / prompt_s, gen_tok_s = gen / gen_s;
    const double gen_ceiling = bw / weight_bytes;
    const double prompt_ceiling = flops / (2.0 * matmul_params);
    if (json) {
      nlohmann::json j = {
          {"model", model},
          {"version", std::string(version_name(hp.version))},
          {"dtype", std::string(dtype_name(main_dtype))},
          {"threads", nthreads},
          {"kernels", kernels::table().name},
          {"prompt_math", prompt_math},
          {"cpu", cpu_features_str()},
          {"prompt_tokens", prompt},
          {"gen_tokens", gen},
          {"prompt_tok_s", prompt_tok_s},
          {"gen_tok_s", gen_tok_s},
          {"peak_rss_mb", rss},
          {"weight_bytes_per_token", weight_bytes},
          {"matmul_params", matmul_params},
          {"bandwidth_gb_s", bw / 1e9},
          {"gemm_gflop_s", flops / 1e9},
          {"gen_ceiling_tok_s", gen_ceiling},
          {"prompt_ceiling_tok_s", prompt_ceiling},
          {"gen_fraction", gen_tok_s / gen_ceiling},
          {"prompt_fraction", prompt_tok_s / prompt_ceiling},
      };
      std::cout << j.dump() << "\n";
    } else {
      std::printf(
          "model %s (%s, %s weights, %.1f MB read per token), %zu threads, kernels %s, prompts "
          "in %s\n",
          model.c_str(), std::string(version_name(hp.version)).c_str(),
          std::string(dtype_name(main_dtype)).c_str(), weight_bytes / 1e6, nthreads,
          kernels::table().name, prompt_math);
      std::printf("probes: bandwidth %.2f GB/s, matmul %.1f GFLOP/s\n", bw / 1e9, flops / 1e9);
      std::printf("prompt     %6d tokens: %9.1f tok/s  (ceiling %9.1f, %5.1f%%)\n", prompt,
                  prompt_tok_s, prompt_ceiling, 100 * prompt_tok_s / prompt_ceiling);
      std::printf("generation %6d tokens: %9.1f tok/s  (ceiling %9.1f, %5.1f%%)\n", gen,
                  gen_tok_s, gen_ceiling, 100 * gen_tok_s / gen_ceiling);
      std::printf("peak RSS %.1f MB\n", rss);
    }
    return 0;
  });
}

WKV_COMMAND("bench", "measure prompt and generation tok/s against bandwidth and matmul ceilings",
            cmd_bench);

}  // namespace wkv::cli
