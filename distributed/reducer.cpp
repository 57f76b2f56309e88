#include "distributed/reducer.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

#include "distributed/collectives.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad::distributed::detail {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string bucket_label(std::size_t b) { return "gradient bucket " + std::to_string(b); }

}  // namespace

Reducer::Reducer(const nn::Module& module, const ProcessGroup& group, const DataParallelOptions& options)
    : group_(group), overlap_(options.overlap_with_backward), divisor_(group.size()) {
    if (!(options.bucket_cap_mb > 0))
        throw std::invalid_argument("DistributedDataParallel: bucket_cap_mb must be positive, got " +
                                    std::to_string(options.bucket_cap_mb));
    for (const Tensor& t : module.parameters())
        if (t.requires_grad()) params_.push_back(t);
    build_buckets(static_cast<int64_t>(options.bucket_cap_mb * 1024 * 1024));
    ready_.assign(params_.size(), false);
    used_.assign(params_.size(), false);
    for (std::size_t k = 0; k < params_.size(); ++k)
        hooks_.push_back(params_[k].register_post_accumulate_grad_hook([this, k](const Tensor&) { on_gradient(k); }));
}

Reducer::~Reducer() {
    for (HookHandle& h : hooks_) h.remove();
}

// Backward has produced parameter k's final gradient.
void Reducer::on_gradient(std::size_t k) {
    if (round_ == Round::Reduced) round_ = Round::Idle;  // a further backward: a new round
    if (round_ == Round::Idle) ++stats_.rounds;
    round_ = Round::Collecting;
    used_[k] = true;
    if (!overlap_) return;  // everything starts in synchronize()
    mark_ready(k);
    // Every parameter reported (the usual case): finish here, at the end of backward, so the
    // averaged gradients are in place even before synchronize() is called.
    if (next_launch_ == buckets_.size()) {
        wait_and_write_back();
        round_ = Round::Reduced;
    }
}

// Reverse registration order: the last layers' gradients come first out of backward. A new
// bucket starts when the cap would be exceeded or the dtype changes.
void Reducer::build_buckets(int64_t cap_bytes) {
    slots_.resize(params_.size());
    std::vector<std::vector<std::size_t>> groups;
    int64_t bytes = 0;
    for (std::size_t k = params_.size(); k-- > 0;) {
        const Tensor& p = params_[k];
        const int64_t size = p.numel() * static_cast<int64_t>(element_size(p.dtype()));
        const bool fresh = groups.empty() || (bytes > 0 && bytes + size > cap_bytes) ||
                           params_[groups.back().front()].dtype() != p.dtype();
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
            shapes.push_back(params_[members[i]].shape());
            slots_[members[i]] = {buckets_.size(), i};
        }
        shapes.push_back({static_cast<int64_t>(members.size())});  // the used-flags
        b.buffer = FlatBuffer(shapes, params_[members.front()].dtype());
        mpi_count(b.buffer.numel(), "DistributedDataParallel bucket");
        b.params = std::move(members);
        b.pending = b.params.size();
        buckets_.push_back(std::move(b));
    }
}

// Parameter k's gradient is final for this backward.
void Reducer::mark_ready(std::size_t k) {
    if (ready_[k]) return;
    ready_[k] = true;
    Bucket& b = buckets_[slots_[k].bucket];
    if (--b.pending == 0) launch_ready_buckets();
    else progress();
}

// Starts every ready bucket from next_launch_ on, stopping at the first that is not ready, so
// that every rank issues its all-reduces in the same order.
void Reducer::launch_ready_buckets() {
    const auto start_time = Clock::now();
    for (; next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0; ++next_launch_) {
        Bucket& b = buckets_[next_launch_];
        std::vector<double> flags;
        for (std::size_t i = 0; i < b.params.size(); ++i) {
            b.buffer.pack(i, params_[b.params[i]].grad());
            flags.push_back(used_[b.params[i]] ? 1.0 : 0.0);
        }
        b.buffer.write(b.params.size(), flags);
        start(next_launch_);
    }
    stats_.launch_seconds += seconds_since(start_time);
    progress();
}

void Reducer::start(std::size_t b) {
    buckets_[b].work = group_.all_reduce_sum_async(buckets_[b].buffer.flat(), Channel::DataParallel, bucket_label(b));
}

// OpenMPI moves a non-blocking collective forward only inside MPI calls: testing the requests
// in flight at every hook lets the messages advance while backward computes.
void Reducer::progress() {
    for (std::size_t i = 0; i < next_launch_; ++i) buckets_[i].work.test();
}

// synchronize(): everything not reported yet counts as ready (zeros where there is no
// gradient), every bucket is waited for and its average written back.
void Reducer::finish() {
    if (round_ == Round::Reduced) {
        round_ = Round::Idle;
        return;
    }
    if (round_ == Round::Idle) ++stats_.rounds;
    for (std::size_t k = params_.size(); k-- > 0;) {
        if (ready_[k]) continue;
        ready_[k] = true;
        --buckets_[slots_[k].bucket].pending;
    }
    launch_ready_buckets();
    wait_and_write_back();
    round_ = Round::Idle;
}

void Reducer::wait_and_write_back() {
    const auto start_time = Clock::now();
    for (Bucket& b : buckets_) {
        b.work.wait();
        const std::vector<double> users = b.buffer.read(b.params.size());  // before scaling
        b.buffer.scale(1.0 / divisor_);
        for (std::size_t i = 0; i < b.params.size(); ++i) {
            if (users[i] == 0) continue;  // no rank used it: its gradient stays as it was
            Tensor& p = params_[b.params[i]];
            Tensor g = p.grad();
            if (!g.defined()) {
                g = empty(p.shape(), {.dtype = p.dtype()});
                p.set_grad(g);
            }
            b.buffer.unpack(i, g);
        }
        b.pending = b.params.size();
        b.work = {};
    }
    stats_.wait_seconds += seconds_since(start_time);
    ready_.assign(params_.size(), false);
    used_.assign(params_.size(), false);
    next_launch_ = 0;
}

void Reducer::shadow() {
    if (round_ == Round::Collecting)
        throw std::logic_error("Join: this rank's last backward is not reduced yet; call synchronize() after every "
                               "backward, before join()");
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
        fill_tensor(buckets_[b].buffer.flat(), 0.0);
        start(b);
    }
    for (Bucket& b : buckets_) {
        b.work.wait();
        b.work = {};
    }
}

std::vector<std::vector<std::size_t>> Reducer::layout() const {
    std::vector<std::vector<std::size_t>> out;
    for (const auto& b : buckets_) out.push_back(b.params);
    return out;
}

}  // namespace tapegrad::distributed::detail
