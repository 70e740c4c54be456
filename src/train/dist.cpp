// Communicators (see dist.hpp).
#include "train/dist.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#ifdef WKV_HAVE_MPI
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
#endif

namespace wkv::train {

bool Comm::any(bool local) {
  if (size() == 1) return local;
  double flag = local ? 1.0 : 0.0;
  allreduce_sum(&flag, 1);
  return flag > 0;
}

void SingleComm::abort(int code) { std::exit(code); }

namespace {

// A positive integer from the environment variable `name`, else 0.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 && n < (1 << 24) ? int(n) : 0;
}

}  // namespace

int launcher_world_size() {
  // Open MPI, MPICH/Intel MPI (hydra: PMI_SIZE, MPI_LOCALNRANKS), MVAPICH.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (int n = env_int(v)) return n;
  // A PMIx launcher that sets no size variable: at least this process.
  if (std::getenv("PMIX_RANK") || std::getenv("MPI_LOCALNRANKS")) return 1;
  return 0;
}

#ifdef WKV_HAVE_MPI

bool have_mpi() { return true; }

namespace {

constexpr size_t kChunk = size_t(1) << 28;  // MPI counts are int: collectives in pieces

class MpiComm final : public Comm {
 public:
  MpiComm() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override { MPI_Finalize(); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* x, size_t n) override { sum(x, n, MPI_FLOAT); }
  void allreduce_sum(double* x, size_t n) override { sum(x, n, MPI_DOUBLE); }
  void broadcast(void* data, size_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (size_t i = 0; i < bytes; i += kChunk)
      MPI_Bcast(p + i, int(std::min(kChunk, bytes - i)), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int code) override {
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);  // MPI_Abort does not return; this satisfies [[noreturn]]
  }
  const char* backend() const override { return "mpi"; }

 private:
  // Reduce to rank 0, then broadcast: one summation order, identical bits on every rank (an
  // MPI_Allreduce may combine the pieces in a different order on different ranks).
  template <class T>
  void sum(T* x, size_t n, MPI_Datatype type) {
    if (size_ == 1) return;
    for (size_t i = 0; i < n; i += kChunk) {
      const int c = int(std::min(kChunk, n - i));
      if (rank_ == 0)
        MPI_Reduce(MPI_IN_PLACE, x + i, c, type, MPI_SUM, 0, MPI_COMM_WORLD);
      else
        MPI_Reduce(x + i, nullptr, c, type, MPI_SUM, 0, MPI_COMM_WORLD);
      MPI_Bcast(x + i, c, type, 0, MPI_COMM_WORLD);
    }
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace

Expected<std::unique_ptr<Comm>> make_comm() {
  if (launcher_world_size() == 0) return std::unique_ptr<Comm>(new SingleComm);
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return Error{"MPI is already initialised in this process"};
  if (MPI_Init(nullptr, nullptr) != MPI_SUCCESS) return Error{"MPI_Init failed"};
  // Errors in a collective end the job (the default handler), never hang one rank.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  return std::unique_ptr<Comm>(new MpiComm);
}

#else  // !WKV_HAVE_MPI

bool have_mpi() { return false; }

Expected<std::unique_ptr<Comm>> make_comm() {
  const int n = launcher_world_size();
  if (n > 1)
    return Error{"started by an MPI launcher with " + std::to_string(n) +
                 " processes, but this wkv was built without MPI (install libopenmpi-dev and "
                 "rebuild)"};
  return std::unique_ptr<Comm>(new SingleComm);
}

#endif

}  // namespace wkv::train
