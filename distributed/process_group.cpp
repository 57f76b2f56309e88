#include "distributed/process_group.hpp"

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>

#include "distributed/collectives.hpp"
#include "distributed/flat_buffer.hpp"
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

// The end of the program (return from main, std::exit): glibc's on_exit hands the handler the
// exit status. A failing status ends the whole job at once, as a crash does; a clean one waits
// for the other ranks (bounded by the timeout), so that none is left waiting for this one.
detail::Engine* g_engine = nullptr;

void leave(int status, void*) {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (finalised) return;  // the program finalised MPI itself
    const ProcessGroup& group = ProcessGroup::world();
    if (group.size() > 1 && status != 0) group.abort("exited with status " + std::to_string(status), status);
    if (!g_engine->broken().empty())
        group.abort("reached the end of the program after a collective failed: " + g_engine->broken());
    const std::string problem = g_engine->leave_together();
    if (!problem.empty()) group.abort(problem);
}

double timeout_from_environment(double fallback) {
    const char* text = std::getenv("TAPEGRAD_COLLECTIVE_TIMEOUT");
    if (!text || !*text) return fallback;
    char* end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (*end != '\0' || !(seconds > 0) || !std::isfinite(seconds))
        throw std::invalid_argument(std::string("TAPEGRAD_COLLECTIVE_TIMEOUT must be a positive number of seconds, got '") +
                                    text + "'");
    return seconds;
}

DebugLevel debug_from_environment(DebugLevel fallback) {
    const char* text = std::getenv("TAPEGRAD_DISTRIBUTED_DEBUG");
    if (!text || !*text) return fallback;
    if (std::strcmp(text, "OFF") == 0) return DebugLevel::Off;
    if (std::strcmp(text, "DETAIL") == 0) return DebugLevel::Detail;
    throw std::invalid_argument(std::string("TAPEGRAD_DISTRIBUTED_DEBUG must be OFF or DETAIL, got '") + text + "'");
}

std::string values_text(int64_t count, DType dtype) {
    return std::to_string(count) + " " + dtype_name(dtype) + (count == 1 ? " value" : " values");
}

void run(detail::Engine& engine, Channel channel, std::string what, std::shared_ptr<void> keep_alive,
         detail::IssueFn issue) {
    engine.wait(engine.start(channel, std::move(what), std::move(keep_alive), std::move(issue)));
}

}  // namespace

const char* channel_name(Channel channel) {
    switch (channel) {
    case Channel::User: return "user";
    case Channel::DataParallel: return "data-parallel";
    case Channel::BatchNorm: return "batch-norm";
    }
    return "unknown";
}

bool Work::test() { return !pending_ || engine_->test(pending_); }

void Work::wait() {
    if (pending_) engine_->wait(pending_);
}

ProcessGroup& ProcessGroup::world() {
    // Never destroyed: the exit handler, which runs after static destructors, still needs it.
    static ProcessGroup& group = *new ProcessGroup;
    return group;
}

ProcessGroup::ProcessGroup() {
    ProcessGroupOptions options;
    options.timeout_seconds = timeout_from_environment(options.timeout_seconds);
    options.debug = debug_from_environment(options.debug);
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
    engine_ = g_engine = new detail::Engine(rank_, size_, options);
    on_exit(leave, nullptr);
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

std::string describe_rank(const ProcessGroup& group) {
    return "rank " + std::to_string(group.rank()) + " of " + std::to_string(group.size());
}

const ProcessGroupOptions& ProcessGroup::options() const { return engine_->options; }

void ProcessGroup::set_options(const ProcessGroupOptions& options) {
    if (!(options.timeout_seconds > 0) || !std::isfinite(options.timeout_seconds))
        throw std::invalid_argument("ProcessGroup::set_options: timeout_seconds must be a positive number, got " +
                                    std::to_string(options.timeout_seconds));
    engine_->options = options;
}

void ProcessGroup::barrier(Channel channel) const {
    if (size_ == 1) return;
    run(*engine_, channel, "barrier", nullptr, [](MPI_Comm comm, MPI_Request* r) { MPI_Ibarrier(comm, r); });
}

void ProcessGroup::all_reduce_sum(std::vector<double>& values, Channel channel) const {
    if (size_ == 1 || values.empty()) return;
    const int count = detail::mpi_count(static_cast<int64_t>(values.size()), "all_reduce_sum");
    auto staged = std::make_shared<std::vector<double>>(values);
    run(*engine_, channel, "all_reduce_sum of " + values_text(count, kFloat64), staged,
        [staged, count](MPI_Comm comm, MPI_Request* r) {
            MPI_Iallreduce(MPI_IN_PLACE, staged->data(), count, MPI_DOUBLE, MPI_SUM, comm, r);
        });
    values = *staged;
}

void ProcessGroup::all_reduce_sum(const Tensor& t, Channel channel) const {
    if (size_ == 1 || t.numel() == 0) return;
    FlatBuffer buffer({t.shape()}, t.dtype());
    buffer.pack(0, t);
    all_reduce_sum_async(buffer.flat(), channel, "").wait();
    buffer.unpack(0, t);
}

Work ProcessGroup::all_reduce_sum_async(const Tensor& dense, Channel channel, const std::string& label) const {
    if (!dense.is_contiguous() || (dense.dtype() != kFloat32 && dense.dtype() != kFloat64))
        throw std::invalid_argument("all_reduce_sum_async: expected a contiguous float32 or float64 tensor, got " +
                                    describe(dense));
    const int count = detail::mpi_count(dense.numel(), "all_reduce_sum");
    auto staged = std::make_shared<Tensor>(dense);
    const std::string what = "all_reduce_sum of " + values_text(count, dense.dtype()) +
                             (label.empty() ? "" : " (" + label + ")");
    return Work(engine_, engine_->start(channel, what, staged, [staged, count](MPI_Comm comm, MPI_Request* r) {
                    MPI_Iallreduce(MPI_IN_PLACE, staged->data_ptr(), count, detail::mpi_type(staged->dtype()), MPI_SUM,
                                   comm, r);
                }));
}

void ProcessGroup::broadcast(const std::vector<Tensor>& tensors, int root, Channel channel) const {
    if (root < 0 || root >= size_)
        throw std::invalid_argument("broadcast: root rank " + std::to_string(root) + " is not in [0, " +
                                    std::to_string(size_) + ")");
    if (size_ == 1) return;
    // One message per dtype: every tensor of that dtype, end to end (integer buffers too, such as
    // BatchNorm's num_batches_tracked).
    for (DType dtype : {kFloat32, kFloat64, kInt64, kInt32}) {
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
        const int count = detail::mpi_count(buffer.numel(), "broadcast");
        auto staged = std::make_shared<Tensor>(buffer.flat());
        run(*engine_, channel, "broadcast of " + values_text(count, dtype) + " from rank " + std::to_string(root),
            staged, [staged, count, root](MPI_Comm comm, MPI_Request* r) {
                MPI_Ibcast(staged->data_ptr(), count, detail::mpi_type(staged->dtype()), root, comm, r);
            });
        if (rank_ != root)
            for (std::size_t i = 0; i < picked.size(); ++i) buffer.unpack(i, picked[i]);
    }
}

std::vector<std::string> ProcessGroup::all_gather(const std::string& text, Channel channel) const {
    if (size_ == 1) return {text};
    const int length = detail::mpi_count(static_cast<int64_t>(text.size()), "all_gather");
    auto lengths = std::make_shared<std::vector<int>>(static_cast<std::size_t>(size_));
    (*lengths)[static_cast<std::size_t>(rank_)] = length;
    run(*engine_, channel, "all_gather of the text lengths", lengths, [lengths](MPI_Comm comm, MPI_Request* r) {
        MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, lengths->data(), 1, MPI_INT, comm, r);
    });
    struct Gather {
        std::string all;
        std::vector<int> lengths, displacements;
    };
    auto gather = std::make_shared<Gather>();
    gather->lengths = *lengths;
    int64_t total = 0;
    for (int n : gather->lengths) {
        gather->displacements.push_back(detail::mpi_count(total, "all_gather"));
        total += n;
    }
    gather->all.assign(static_cast<std::size_t>(total), '\0');
    text.copy(gather->all.data() + gather->displacements[static_cast<std::size_t>(rank_)], text.size());
    run(*engine_, channel, "all_gather of texts", gather, [gather](MPI_Comm comm, MPI_Request* r) {
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gather->all.data(), gather->lengths.data(),
                        gather->displacements.data(), MPI_CHAR, comm, r);
    });
    std::vector<std::string> out;
    for (std::size_t r = 0; r < gather->lengths.size(); ++r)
        out.push_back(gather->all.substr(static_cast<std::size_t>(gather->displacements[r]),
                                         static_cast<std::size_t>(gather->lengths[r])));
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
