#pragma once
// The process group of data-parallel training: the processes that mpirun started (MPI's
// MPI_COMM_WORLD), their ranks and the collectives the rest of distributed/ needs. Started
// without mpirun, a program is a world of one, so the same script runs either way.
//
// MPI is initialised on the first call to ProcessGroup::world() (MPI_THREAD_SERIALIZED: any
// thread may call MPI, one at a time, as a training loop does). mpi.h stays out of this header.
//
// No collective waits forever. Each is a non-blocking MPI call polled against a deadline
// (options().timeout_seconds); past it, std::runtime_error names the collective, what the other
// ranks are doing and what to do, and the group refuses further collectives. A rank that reaches
// the end of the program (return from main, std::exit) while others still wait for it ends the
// job instead of hanging it: see docs/distributed.md, "Failures".
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::distributed {

// Each part of the library issues its collectives on a communicator of its own. MPI pairs the
// collectives of one communicator in the order they are issued, whatever they are: on a shared
// one, a rank's metric all-reduce could pair with another rank's batch-norm all-reduce and return
// that reduction's numbers. Apart, such a mix-up makes both ranks wait, and the timeout names it.
enum class Channel {
    User,          // the program's own calls (metrics, barriers)
    DataParallel,  // DistributedDataParallel and Join: start-up checks, buffers, gradient buckets
    BatchNorm,     // SyncBatchNorm's statistics and their gradients
};
inline constexpr int kChannelCount = 3;
// "user", "data-parallel", "batch-norm": for messages.
const char* channel_name(Channel channel);

// PyTorch's TORCH_DISTRIBUTED_DEBUG.
enum class DebugLevel {
    Off,
    // Before every collective, each rank sends every other its description (name, dtype, count),
    // and all of them are compared before the collective runs: a rank that issues a different
    // collective, or the same ones in another order, gets std::runtime_error naming both ranks'
    // collectives, on every rank. Costs 2(N-1) small messages per collective.
    Detail,
};

struct ProcessGroupOptions {
    // How long a collective may wait for the other ranks (PyTorch's init_process_group timeout,
    // also 30 minutes by default). Environment: TAPEGRAD_COLLECTIVE_TIMEOUT=<seconds>.
    double timeout_seconds = 1800;
    // Environment: TAPEGRAD_DISTRIBUTED_DEBUG=OFF or DETAIL.
    DebugLevel debug = DebugLevel::Off;
};

namespace detail {
class Engine;
struct Pending;
}  // namespace detail

// A collective that was started and may still be running (PyTorch's async_op=True handle).
class Work {
public:
    Work() = default;
    // Lets MPI move the collective forward; true once it has completed on this rank (or when
    // nothing was started).
    bool test();
    // Returns when it has completed; throws std::runtime_error past the group's timeout.
    void wait();
    bool started() const { return pending_ != nullptr; }

private:
    friend class ProcessGroup;
    Work(detail::Engine* engine, std::shared_ptr<detail::Pending> pending)
        : engine_(engine), pending_(std::move(pending)) {}
    detail::Engine* engine_ = nullptr;
    std::shared_ptr<detail::Pending> pending_;
};

class ProcessGroup {
public:
    // The group of every process of the job, initialising MPI on first use. Reads
    // TAPEGRAD_COLLECTIVE_TIMEOUT and TAPEGRAD_DISTRIBUTED_DEBUG (std::invalid_argument when
    // they are malformed).
    static ProcessGroup& world();

    int rank() const { return rank_; }
    int size() const { return size_; }
    // Rank 0 writes checkpoints and draws the progress bar.
    bool is_main() const { return rank_ == 0; }

    const ProcessGroupOptions& options() const;
    // Takes effect for the next collective; set the same options on every rank.
    void set_options(const ProcessGroupOptions& options);

    // Every collective: every rank must call it, on the same channel, in the same order.
    void barrier(Channel channel = Channel::User) const;
    // Sums `values` over the ranks, in place; every rank gets the same result.
    void all_reduce_sum(std::vector<double>& values, Channel channel = Channel::User) const;
    // Sums a tensor over the ranks, in place (float32 or float64, any strides).
    void all_reduce_sum(const Tensor& t, Channel channel = Channel::User) const;
    // Starts summing a dense (contiguous) float32 or float64 tensor over the ranks, in place;
    // `label` names it in errors ("gradient bucket 2"). The tensor is kept alive until done.
    Work all_reduce_sum_async(const Tensor& dense, Channel channel, const std::string& label) const;
    // Copies rank `root`'s tensors into every other rank's (same shapes and dtypes on every rank:
    // check with all_gather first when unsure).
    void broadcast(const std::vector<Tensor>& tensors, int root = 0, Channel channel = Channel::User) const;
    // Every rank's `text`, indexed by rank.
    std::vector<std::string> all_gather(const std::string& text, Channel channel = Channel::User) const;

    // Prints "tapegrad.distributed: rank R of N failed: <message>; stopping all N ranks" on this
    // rank's stderr and ends the whole job (MPI_Abort). The other ranks, killed by mpirun, each
    // print one line saying so. Never returns.
    [[noreturn]] void abort(const std::string& message, int exit_code = 1) const;

    ProcessGroup(const ProcessGroup&) = delete;
    ProcessGroup& operator=(const ProcessGroup&) = delete;

private:
    ProcessGroup();
    int rank_ = 0;
    int size_ = 1;
    detail::Engine* engine_ = nullptr;  // lives until the process ends: exit handlers use it
};

// "rank 1 of 2": for messages.
std::string describe_rank(const ProcessGroup& group);

}  // namespace tapegrad::distributed
