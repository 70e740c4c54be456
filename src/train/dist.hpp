// Data parallelism over processes: a communicator with the few collectives training needs.
// A single-process communicator is always available; an MPI one is compiled in when CMake finds
// MPI (WKV_HAVE_MPI) and is used only when the process was started by an MPI launcher (mpirun,
// mpiexec, srun with PMI), so a plain `wkv train` never initialises MPI.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/error.hpp"

namespace wkv::train {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sum over all ranks. Every rank receives bit-identical results (the MPI version
  // reduces to rank 0 and broadcasts, so no rank sums in a different order).
  virtual void allreduce_sum(float* x, size_t n) = 0;
  virtual void allreduce_sum(double* x, size_t n) = 0;
  // Copies `bytes` bytes at `data` from rank `root` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job at once (after a failure that the others cannot learn of).
  [[noreturn]] virtual void abort(int code) = 0;
  virtual const char* backend() const = 0;  // "single" or "mpi"

  bool is_root() const { return rank() == 0; }
  // True on every rank when `local` is true on any of them (a collective: all ranks must call).
  bool any(bool local);
};

// One process: rank 0 of 1; the collectives do nothing.
class SingleComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
  const char* backend() const override { return "single"; }
};

// Whether this build has the MPI communicator.
bool have_mpi();

// The number of processes an MPI launcher started this one among (from OMPI_COMM_WORLD_SIZE,
// PMI_SIZE, PMIX_RANK, MPI_LOCALNRANKS, MV2_COMM_WORLD_SIZE); 0 when not launched by one.
int launcher_world_size();

// The communicator of this process: MPI when launched by an MPI launcher (MPI is initialised
// here and finalised when the communicator is destroyed; at most one at a time), else
// SingleComm. An error when launched with several processes by a build without MPI.
Expected<std::unique_ptr<Comm>> make_comm();

}  // namespace wkv::train
