#include "distributed/data_parallel.hpp"

#include <chrono>
#include <stdexcept>

#include "distributed/flat_buffer.hpp"
#include "distributed/mpi_detail.hpp"
#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad::distributed {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// One line per parameter and buffer: what must agree across ranks.
std::vector<std::string> describe_state(const nn::Module& module) {
    std::vector<std::string> lines;
    for (const auto& [name, t] : module.named_parameters())
        lines.push_back("parameter '" + name + "' " + dtype_name(t.dtype()) + " " + to_string(t.shape()) +
                        (t.requires_grad() ? "" : " (frozen)"));
    for (const auto& [name, t] : module.named_buffers())
        lines.push_back("buffer '" + name + "' " + dtype_name(t.dtype()) + " " + to_string(t.shape()));
    return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
        lines.push_back(text.substr(start, end - start));
    return lines;
}

// Throws the same std::invalid_argument on every rank when any rank's model differs from rank 0's.
void check_same_model(const nn::Module& module, const ProcessGroup& group) {
    const std::vector<std::string> all = group.all_gather(join_lines(describe_state(module)));
    const std::vector<std::string> reference = split_lines(all[0]);
    for (std::size_t r = 1; r < all.size(); ++r) {
        const std::vector<std::string> other = split_lines(all[r]);
        const std::size_t n = std::min(reference.size(), other.size());
        std::size_t i = 0;
        while (i < n && reference[i] == other[i]) ++i;
        if (i == n && reference.size() == other.size()) continue;
        const std::string on0 = i < reference.size() ? reference[i] : "nothing";
        const std::string onr = i < other.size() ? other[i] : "nothing";
        throw std::invalid_argument("DistributedDataParallel: the model differs between ranks at entry " +
                                    std::to_string(i) + ": rank 0 has " + on0 + ", rank " + std::to_string(r) +
                                    " has " + onr + " (rank 0 has " + std::to_string(reference.size()) +
                                    " parameters and buffers, rank " + std::to_string(r) + " has " +
                                    std::to_string(other.size()) + "); every rank must build the same model");
    }
}

}  // namespace

// The gradient buckets and the state of the current backward pass.
struct DistributedDataParallel::Reducer {
    struct Bucket {
        std::vector<std::size_t> params;  // indices into Reducer::params
        FlatBuffer buffer;
        std::size_t pending = 0;  // gradients this backward has yet to produce
        MPI_Request request = MPI_REQUEST_NULL;
    };
    struct Slot {
        std::size_t bucket, index;  // where a parameter's gradient lives
    };

    // Idle: no gradient since the last reduction. Collecting: backward has produced gradients
    // that are not reduced yet. Reduced: the hooks finished the reduction by themselves;
    // synchronize() has nothing left to do.
    enum class Round { Idle, Collecting, Reduced };

    const ProcessGroup& group;
    bool overlap;
    std::vector<Tensor> params;     // those that require grad, in registration order
    std::vector<Bucket> buckets;    // in launch order
    std::vector<Slot> slots;        // per parameter
    std::vector<bool> ready;        // per parameter, this round
    std::size_t next_launch = 0;    // buckets [0, next_launch) are started
    Round round = Round::Idle;
    std::vector<HookHandle> hooks;  // one post-accumulate hook per parameter
    ReducerStats stats;

    Reducer(const nn::Module& module, const ProcessGroup& group, const DataParallelOptions& options)
        : group(group), overlap(options.overlap_with_backward) {
        if (!(options.bucket_cap_mb > 0))
            throw std::invalid_argument("DistributedDataParallel: bucket_cap_mb must be positive, got " +
                                        std::to_string(options.bucket_cap_mb));
        for (const Tensor& t : module.parameters())
            if (t.requires_grad()) params.push_back(t);
        build_buckets(static_cast<int64_t>(options.bucket_cap_mb * 1024 * 1024));
        ready.assign(params.size(), false);
        for (std::size_t k = 0; k < params.size(); ++k)
            hooks.push_back(params[k].register_post_accumulate_grad_hook([this, k](const Tensor&) { on_gradient(k); }));
    }

    ~Reducer() {
        for (HookHandle& h : hooks) h.remove();
    }

    // Backward has produced parameter k's final gradient.
    void on_gradient(std::size_t k) {
        if (round == Round::Reduced) round = Round::Idle;  // a further backward: a new round
        if (round == Round::Idle) ++stats.rounds;
        round = Round::Collecting;
        if (!overlap) return;  // everything starts in synchronize()
        mark_ready(k);
        // Every parameter reported (the usual case): finish here, at the end of backward, so the
        // averaged gradients are in place even before synchronize() is called.
        if (next_launch == buckets.size()) {
            wait_and_write_back();
            round = Round::Reduced;
        }
    }

    // Reverse registration order: the last layers' gradients come first out of backward. A new
    // bucket starts when the cap would be exceeded or the dtype changes.
    void build_buckets(int64_t cap_bytes) {
        slots.resize(params.size());
        std::vector<std::vector<std::size_t>> groups;
        int64_t bytes = 0;
        for (std::size_t k = params.size(); k-- > 0;) {
            const Tensor& p = params[k];
            const int64_t size = p.numel() * static_cast<int64_t>(element_size(p.dtype()));
            const bool fresh = groups.empty() || (bytes > 0 && bytes + size > cap_bytes) ||
                               params[groups.back().front()].dtype() != p.dtype();
            if (fresh) {
                groups.emplace_back();
                bytes = 0;
            }
            groups.back().push_back(k);
            bytes += size;
        }
        for (auto& members : groups) {
            Bucket b;
            std::vector<Shape> shapes;
            for (std::size_t i = 0; i < members.size(); ++i) {
                shapes.push_back(params[members[i]].shape());
                slots[members[i]] = {buckets.size(), i};
            }
            b.buffer = FlatBuffer(shapes, params[members.front()].dtype());
            detail::mpi_count(b.buffer.numel(), "DistributedDataParallel bucket");
            b.params = std::move(members);
            b.pending = b.params.size();
            buckets.push_back(std::move(b));
        }
    }

    // Parameter k's gradient is final for this backward.
    void mark_ready(std::size_t k) {
        if (ready[k]) return;
        ready[k] = true;
        Bucket& b = buckets[slots[k].bucket];
        if (--b.pending == 0) launch_ready_buckets();
        else progress();
    }

    // Starts every ready bucket from next_launch on, stopping at the first that is not ready, so
    // that every rank issues its all-reduces in the same order.
    void launch_ready_buckets() {
        const auto start = Clock::now();
        for (; next_launch < buckets.size() && buckets[next_launch].pending == 0; ++next_launch) {
            Bucket& b = buckets[next_launch];
            for (std::size_t i = 0; i < b.params.size(); ++i) b.buffer.pack(i, params[b.params[i]].grad());
            if (group.size() > 1)
                MPI_Iallreduce(MPI_IN_PLACE, b.buffer.flat().data_ptr(), static_cast<int>(b.buffer.numel()),
                               detail::mpi_type(b.buffer.flat().dtype()), MPI_SUM, MPI_COMM_WORLD, &b.request);
        }
        stats.launch_seconds += seconds_since(start);
        progress();
    }

    // OpenMPI moves a non-blocking collective forward only inside MPI calls: testing the requests
    // in flight at every hook lets the messages advance while backward computes.
    void progress() {
        for (std::size_t i = 0; i < next_launch; ++i) {
            if (buckets[i].request == MPI_REQUEST_NULL) continue;
            int done = 0;
            MPI_Test(&buckets[i].request, &done, MPI_STATUS_IGNORE);
        }
    }

    // synchronize(): everything not reported yet counts as ready (zeros where there is no
    // gradient), every bucket is waited for and its average written back.
    void finish() {
        if (round == Round::Reduced) {
            round = Round::Idle;
            return;
        }
        if (round == Round::Idle) ++stats.rounds;
        for (std::size_t k = params.size(); k-- > 0;) {
            if (ready[k]) continue;
            ready[k] = true;
            --buckets[slots[k].bucket].pending;
        }
        launch_ready_buckets();
        wait_and_write_back();
        round = Round::Idle;
    }

    void wait_and_write_back() {
        const auto start = Clock::now();
        const double scale = 1.0 / group.size();
        for (Bucket& b : buckets) {
            MPI_Wait(&b.request, MPI_STATUS_IGNORE);
            if (group.size() > 1) b.buffer.scale(scale);
            for (std::size_t i = 0; i < b.params.size(); ++i) {
                Tensor& p = params[b.params[i]];
                Tensor g = p.grad();
                if (!g.defined()) {
                    g = empty(p.shape(), {.dtype = p.dtype()});
                    p.set_grad(g);
                }
                b.buffer.unpack(i, g);
            }
            b.pending = b.params.size();
        }
        stats.wait_seconds += seconds_since(start);
        ready.assign(params.size(), false);
        next_launch = 0;
    }
};

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<nn::Module> module, DataParallelOptions options,
                                                 ProcessGroup& group)
    : nn::Module("DistributedDataParallel"), module_(std::move(module)), group_(group), options_(options) {
    if (!module_) throw std::invalid_argument("DistributedDataParallel: the module is null");
    register_module("module", module_);
    check_same_model(*module_, group_);
    {
        NoGradGuard no_grad;
        std::vector<Tensor> state;
        for (const auto& [_, t] : module_->state_dict()) state.push_back(t);
        group_.broadcast(state, 0);
    }
    reducer_ = std::make_unique<Reducer>(*module_, group_, options_);
}

DistributedDataParallel::~DistributedDataParallel() = default;

Tensor DistributedDataParallel::forward(const Tensor& x) { return forward_inputs({x}); }

Tensor DistributedDataParallel::forward_inputs(const std::vector<Tensor>& inputs) {
    if (reducer_->round == Reducer::Round::Collecting)
        throw std::logic_error("DistributedDataParallel: the previous backward's gradients are not reduced yet; "
                               "call synchronize() after backward and before the next forward");
    if (options_.broadcast_buffers && module_->is_training()) {
        NoGradGuard no_grad;
        group_.broadcast(module_->buffers(), 0);
    }
    return module_->forward_inputs(inputs);
}

void DistributedDataParallel::synchronize() { reducer_->finish(); }

std::vector<std::vector<std::size_t>> DistributedDataParallel::bucket_layout() const {
    std::vector<std::vector<std::size_t>> out;
    for (const auto& b : reducer_->buckets) out.push_back(b.params);
    return out;
}

const ReducerStats& DistributedDataParallel::stats() const { return reducer_->stats; }

}  // namespace tapegrad::distributed
