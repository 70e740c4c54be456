#include "core/thread_pool.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace wkv {
namespace {

void futex_wait(std::atomic<uint32_t>* a, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* a) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until pred() or kSpinMicros have passed; returns pred().
template <class P>
bool spin_until(P pred, int micros) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= end) return pred();
  }
}

constexpr uint64_t kMask24 = (uint64_t{1} << 24) - 1;
inline uint64_t pack(uint64_t gen, uint64_t n, uint64_t next) {
  return (gen & 0xffff) << 48 | (n & kMask24) << 24 | (next & kMask24);
}

// The CPUs this thread may run on, in order (empty if that cannot be read).
std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort: a refusal leaves the thread free
}

}  // namespace

ThreadPool::ThreadPool(size_t threads) {
  WKV_ASSERT(gen_.load() == 0);
  // Worker i runs on the i-th allowed CPU (the caller, unpinned, keeps the first one free of
  // workers), when there are CPUs enough and WKV_PIN is not 0. Unpinned, Linux often woke a
  // worker on the caller's CPU and left the two sharing it for milliseconds: on 2 vCPUs the
  // first pool-vs-solo probe then measured the pool slower than one thread in about half of
  // all runs (0.10 against 0.08 ns per multiply-add; 0.045 once the threads were apart).
  const char* pin_env = std::getenv("WKV_PIN");
  const bool pin = !(pin_env && std::strcmp(pin_env, "0") == 0);
  const std::vector<int> cpus = pin ? allowed_cpus() : std::vector<int>{};
  for (size_t i = 1; i < threads; ++i) {
    const int cpu = cpus.size() >= threads ? cpus[i] : -1;
    workers_.emplace_back([this, cpu] {
      if (cpu >= 0) pin_self(cpu);
      worker_loop();
    });
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  gen_.fetch_add(1);
  futex_wake_all(&gen_);
  for (auto& t : workers_) t.join();
}

bool ThreadPool::claim(uint64_t seen, size_t* index) {
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((s >> 48) != (seen >> 48)) return false;  // another job: not ours to take
    const uint64_t n = (s >> 24) & kMask24, next = s & kMask24;
    if (next >= n) return false;
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
      *index = static_cast<size_t>(next);
      return true;
    }
  }
}

void ThreadPool::do_tasks() {
  const uint64_t seen = state_.load(std::memory_order_acquire);
  size_t i;
  while (claim(seen, &i)) {
    fn_(ctx_, i);  // stable: the job cannot end before this claimed task is done
    const uint32_t n = static_cast<uint32_t>((seen >> 24) & kMask24);
    if (done_.fetch_add(1) + 1 == n && caller_sleeping_.load() != 0) futex_wake_all(&done_);
  }
}

void ThreadPool::worker_loop() {
  // gen_ is 0 until the first job or shutdown, even if this thread starts late.
  uint32_t seen = 0;
  for (;;) {
    if (!spin_until([&] { return gen_.load(std::memory_order_acquire) != seen; }, kSpinMicros)) {
      sleepers_.fetch_add(1);
      while (gen_.load() == seen) futex_wait(&gen_, seen);
      sleepers_.fetch_sub(1);
    }
    seen = gen_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    do_tasks();
  }
}

void ThreadPool::run_raw(size_t n, RawFn fn, void* ctx) {
  WKV_ASSERT(n <= kMaxTasks);
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0);
  const uint64_t g = (state_.load() >> 48) + 1;
  state_.store(pack(g, n, 0), std::memory_order_release);
  gen_.fetch_add(1);
  if (sleepers_.load() != 0) futex_wake_all(&gen_);
  do_tasks();
  const uint32_t want = static_cast<uint32_t>(n);
  if (!spin_until([&] { return done_.load(std::memory_order_acquire) == want; }, kSpinMicros)) {
    caller_sleeping_.store(1);
    for (uint32_t d; (d = done_.load()) != want;) futex_wait(&done_, d);
    caller_sleeping_.store(0);
  }
}

}  // namespace wkv
