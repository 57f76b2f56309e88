#pragma once
// The process group of data-parallel training: the processes that mpirun started (MPI's
// MPI_COMM_WORLD), their ranks and the collectives the rest of distributed/ needs. Started
// without mpirun, a program is a world of one, so the same script runs either way.
//
// MPI is initialised on the first call to ProcessGroup::world() (MPI_THREAD_SERIALIZED: any
// thread may call MPI, one at a time, as a training loop does) and finalised when the program
// exits. mpi.h stays out of this header.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::distributed {

class ProcessGroup {
public:
    // The group of every process of the job, initialising MPI on first use.
    static ProcessGroup& world();

    int rank() const { return rank_; }
    int size() const { return size_; }
    // Rank 0 writes checkpoints and draws the progress bar.
    bool is_main() const { return rank_ == 0; }

    void barrier() const;
    // Sums `values` over the ranks, in place; every rank gets the same result.
    void all_reduce_sum(std::vector<double>& values) const;
    // Sums a tensor over the ranks, in place (float32 or float64, any strides).
    void all_reduce_sum(const Tensor& t) const;
    // Copies rank `root`'s tensors into every other rank's (same shapes and dtypes on every rank:
    // check with all_gather first when unsure).
    void broadcast(const std::vector<Tensor>& tensors, int root = 0) const;
    // Every rank's `text`, indexed by rank.
    std::vector<std::string> all_gather(const std::string& text) const;

    // Prints "tapegrad.distributed: rank R of N failed: <message>; stopping all N ranks" on this
    // rank's stderr and ends the whole job (MPI_Abort). The other ranks, killed by mpirun, each
    // print one line saying so. Never returns.
    [[noreturn]] void abort(const std::string& message, int exit_code = 1) const;

    ProcessGroup(const ProcessGroup&) = delete;
    ProcessGroup& operator=(const ProcessGroup&) = delete;

private:
    ProcessGroup();
    ~ProcessGroup();
    int rank_ = 0;
    int size_ = 1;
};

// "rank 1 of 2": for messages.
std::string describe_rank(const ProcessGroup& group);

}  // namespace tapegrad::distributed
