// A fixed pool of worker threads for data-parallel loops on the per-token path.
//
// run(n, fn) calls fn(i) once for every i in [0, n), spread over the workers and the calling
// thread, and returns when all are done. Tasks are claimed one at a time from a shared counter,
// so a worker that the OS does not schedule (another process holds its core) simply claims
// nothing: the caller does the work itself instead of waiting. Idle workers spin for a short,
// bounded time (kSpinMicros) after each job, then sleep on a futex; the caller waits for the
// last claimed task the same way. No allocation per job.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace wkv {

class ThreadPool {
 public:
  // `threads` counts the caller: 1 means no workers (run() is a plain loop).
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t threads() const { return workers_.size() + 1; }

  template <class F>
  void run(size_t n, F&& fn) {
    if (n == 0) return;
    if (workers_.empty() || n == 1) {
      for (size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    run_raw(n, [](void* ctx, size_t i) { (*static_cast<Fn*>(ctx))(i); }, &fn);
  }

  static constexpr int kSpinMicros = 100;
  static constexpr size_t kMaxTasks = (size_t{1} << 24) - 1;

 private:
  using RawFn = void (*)(void* ctx, size_t i);
  void run_raw(size_t n, RawFn fn, void* ctx);
  void worker_loop();
  // Claims the next task of the current job; false when there is none.
  bool claim(uint64_t seen, size_t* index);
  void do_tasks();

  // state_: generation (16 bits) | task count (24) | next task (24).
  std::atomic<uint64_t> state_{0};
  std::atomic<uint32_t> gen_{0};        // futex word: bumped per job and at shutdown
  std::atomic<uint32_t> done_{0};       // tasks finished in the current job (futex word)
  std::atomic<int> sleepers_{0};        // workers asleep on gen_
  std::atomic<int> caller_sleeping_{0};
  std::atomic<bool> stop_{false};
  RawFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::vector<std::thread> workers_;
};

}  // namespace wkv
