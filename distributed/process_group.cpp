#include "distributed/process_group.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>

#include "distributed/flat_buffer.hpp"
#include "distributed/mpi_detail.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad::distributed {
namespace {

// The line a rank prints when mpirun kills it because another rank aborted. Formatted at start-up,
// written from the signal handler with write(2), which is async-signal-safe.
char g_killed_line[256];
std::size_t g_killed_length = 0;
volatile std::sig_atomic_t g_aborting = 0;

extern "C" void on_sigterm(int signal_number) {
    if (!g_aborting) {
        ssize_t ignored = write(STDERR_FILENO, g_killed_line, g_killed_length);
        (void)ignored;
    }
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
}

// An exception nobody caught ends the whole job with its message instead of leaving the other
// ranks waiting in a collective for this one.
void on_terminate() {
    std::string what = "std::terminate was called without an active exception";
    if (std::exception_ptr e = std::current_exception()) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            what = std::string("uncaught exception: ") + x.what();
        } catch (...) {
            what = "uncaught exception of a type not derived from std::exception";
        }
    }
    ProcessGroup::world().abort(what);
}

}  // namespace

ProcessGroup& ProcessGroup::world() {
    static ProcessGroup group;
    return group;
}

ProcessGroup::ProcessGroup() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided = 0;
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
        if (provided < MPI_THREAD_SERIALIZED)
            std::cerr << "tapegrad.distributed: warning: MPI provides thread level " << provided
                      << " (< MPI_THREAD_SERIALIZED); call MPI only from the main thread\n";
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (size_ > 1) {
        std::set_terminate(on_terminate);
        const int n = std::snprintf(g_killed_line, sizeof g_killed_line,
                                    "tapegrad.distributed: %s: stopped by mpirun, because another rank failed "
                                    "(its message is above) or the job was interrupted\n",
                                    describe_rank(*this).c_str());
        g_killed_length = static_cast<std::size_t>(std::max(0, std::min<int>(n, sizeof g_killed_line - 1)));
        std::signal(SIGTERM, on_sigterm);
    }
}

ProcessGroup::~ProcessGroup() {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Finalize();
}

std::string describe_rank(const ProcessGroup& group) {
    return "rank " + std::to_string(group.rank()) + " of " + std::to_string(group.size());
}

void ProcessGroup::barrier() const { MPI_Barrier(MPI_COMM_WORLD); }

void ProcessGroup::all_reduce_sum(std::vector<double>& values) const {
    if (size_ == 1 || values.empty()) return;
    MPI_Allreduce(MPI_IN_PLACE, values.data(), detail::mpi_count(static_cast<int64_t>(values.size()), "all_reduce_sum"),
                  MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void ProcessGroup::all_reduce_sum(const Tensor& t) const {
    if (size_ == 1 || t.numel() == 0) return;
    FlatBuffer buffer({t.shape()}, t.dtype());
    buffer.pack(0, t);
    MPI_Allreduce(MPI_IN_PLACE, buffer.flat().data_ptr(), detail::mpi_count(buffer.numel(), "all_reduce_sum"),
                  detail::mpi_type(t.dtype()), MPI_SUM, MPI_COMM_WORLD);
    buffer.unpack(0, t);
}

void ProcessGroup::broadcast(const std::vector<Tensor>& tensors, int root) const {
    if (size_ == 1) return;
    // One message per dtype: every tensor of that dtype, end to end.
    for (DType dtype : {kFloat32, kFloat64}) {
        std::vector<Tensor> picked;
        std::vector<Shape> shapes;
        for (const Tensor& t : tensors)
            if (t.dtype() == dtype) {
                picked.push_back(t);
                shapes.push_back(t.shape());
            }
        if (picked.empty()) continue;
        FlatBuffer buffer(shapes, dtype);
        if (rank_ == root)
            for (std::size_t i = 0; i < picked.size(); ++i) buffer.pack(i, picked[i]);
        MPI_Bcast(buffer.flat().data_ptr(), detail::mpi_count(buffer.numel(), "broadcast"), detail::mpi_type(dtype),
                  root, MPI_COMM_WORLD);
        if (rank_ != root)
            for (std::size_t i = 0; i < picked.size(); ++i) buffer.unpack(i, picked[i]);
    }
}

std::vector<std::string> ProcessGroup::all_gather(const std::string& text) const {
    const int length = detail::mpi_count(static_cast<int64_t>(text.size()), "all_gather");
    std::vector<int> lengths(static_cast<std::size_t>(size_));
    MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
    std::vector<int> displacements(lengths.size());
    int64_t total = 0;
    for (std::size_t r = 0; r < lengths.size(); ++r) {
        displacements[r] = detail::mpi_count(total, "all_gather");
        total += lengths[r];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    MPI_Allgatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), displacements.data(), MPI_CHAR,
                   MPI_COMM_WORLD);
    std::vector<std::string> out;
    for (std::size_t r = 0; r < lengths.size(); ++r)
        out.push_back(all.substr(static_cast<std::size_t>(displacements[r]), static_cast<std::size_t>(lengths[r])));
    return out;
}

void ProcessGroup::abort(const std::string& message, int exit_code) const {
    g_aborting = 1;
    std::cout.flush();
    std::cerr << "\ntapegrad.distributed: " << describe_rank(*this) << " failed: " << message << "; stopping all "
              << size_ << " ranks" << std::endl;
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest if it did
}

}  // namespace tapegrad::distributed
