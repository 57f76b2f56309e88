#pragma once
// DistributedDataParallel's gradient reduction; internal to distributed/ (data_parallel.hpp
// describes what it does for users).
//
// Each bucket's buffer holds its gradients and, after them, one flag per parameter: 1 where this
// rank's backward produced the gradient. The flags are summed with the gradients, so one
// all-reduce also tells every rank which parameters no rank used: those keep their .grad()
// untouched (undefined after zero_grad), as PyTorch's reducer does with find_unused_parameters,
// and the optimizer skips them.
#include <cstdint>
#include <vector>

#include "distributed/data_parallel.hpp"
#include "distributed/flat_buffer.hpp"
#include "engine/autograd.hpp"

namespace tapegrad::distributed::detail {

class Reducer {
public:
    Reducer(const nn::Module& module, const ProcessGroup& group, const DataParallelOptions& options);
    ~Reducer();
    Reducer(const Reducer&) = delete;
    Reducer& operator=(const Reducer&) = delete;

    // The summed gradients of the next reduction are divided by this many ranks.
    void set_divisor(int ranks) { divisor_ = ranks; }
    // A backward has produced gradients that are not reduced yet.
    bool collecting() const { return round_ == Round::Collecting; }
    // synchronize(): reduces whatever the hooks did not.
    void finish();
    // Join, on a rank that ran out of data: takes part in every bucket's all-reduce with zeros
    // (and no parameter used), as the training ranks' backward issues them; keeps nothing.
    void shadow();

    std::vector<std::vector<std::size_t>> layout() const;
    const ReducerStats& stats() const { return stats_; }

private:
    struct Bucket {
        std::vector<std::size_t> params;  // indices into params_
        FlatBuffer buffer;                // their gradients, then one slot of used-flags
        std::size_t pending = 0;          // gradients this backward has yet to produce
        Work work;
    };
    struct Slot {
        std::size_t bucket, index;  // where a parameter's gradient lives
    };
    // Idle: no gradient since the last reduction. Collecting: backward has produced gradients
    // that are not reduced yet. Reduced: the hooks finished the reduction by themselves;
    // synchronize() has nothing left to do.
    enum class Round { Idle, Collecting, Reduced };

    void on_gradient(std::size_t k);
    void build_buckets(int64_t cap_bytes);
    void mark_ready(std::size_t k);
    void launch_ready_buckets();
    void start(std::size_t b);
    void progress();
    void wait_and_write_back();

    const ProcessGroup& group_;
    bool overlap_;
    int divisor_;
    std::vector<Tensor> params_;   // those that require grad, in registration order
    std::vector<Bucket> buckets_;  // in launch order
    std::vector<Slot> slots_;      // per parameter
    std::vector<bool> ready_;      // per parameter, this round
    std::vector<bool> used_;       // per parameter, this round: its hook fired
    std::size_t next_launch_ = 0;  // buckets [0, next_launch_) are started
    Round round_ = Round::Idle;
    std::vector<HookHandle> hooks_;  // one post-accumulate hook per parameter
    ReducerStats stats_;
};

}  // namespace tapegrad::distributed::detail
