#include "distributed/join.hpp"

#include <exception>
#include <stdexcept>

#include "distributed/reducer.hpp"
#include "distributed/sync_batch_norm.hpp"
#include "engine/autograd.hpp"

namespace tapegrad::distributed {

Join::Join(DistributedDataParallel& ddp, JoinOptions options)
    : ddp_(ddp), options_(options), exceptions_at_entry_(std::uncaught_exceptions()) {
    if (!options_.enable) return;
    if (ddp_.join_)
        throw std::logic_error("Join: this DistributedDataParallel is already inside a Join; use one Join per loop");
    if (!options_.throw_on_early_termination)
        for (const auto& [name, module] : ddp_.module().named_modules())
            if (dynamic_cast<SyncBatchNorm*>(module))
                throw std::invalid_argument(
                    "Join: the model has a SyncBatchNorm layer ('" + name +
                    "'), whose collectives a rank that ran out of data cannot shadow; pass "
                    "{.throw_on_early_termination = true} and catch the error every rank then throws, or give every "
                    "rank the same number of batches (DistributedSampler with Remainder::Pad or Drop)");
    ddp_.join_ = this;
}

Join::~Join() {
    if (options_.enable && !joined_ && std::uncaught_exceptions() == exceptions_at_entry_) {
        try {
            join();
        } catch (const std::exception& e) {
            ddp_.group().abort(std::string("Join: ") + e.what());
        }
    }
    if (ddp_.join_ == this) ddp_.join_ = nullptr;
}

Join::Step Join::exchange(State state, bool sync_buffers, bool backward) const {
    const ProcessGroup& group = ddp_.group();
    const auto ranks = static_cast<std::size_t>(group.size());
    // One entry per rank (its state), then how many ranks ask for a buffer broadcast and how many
    // run a backward after this forward.
    std::vector<double> facts(ranks + 2, 0.0);
    facts[static_cast<std::size_t>(group.rank())] = static_cast<double>(state);
    facts[ranks] = sync_buffers ? 1 : 0;
    facts[ranks + 1] = backward ? 1 : 0;
    group.all_reduce_sum(facts, Channel::DataParallel);
    Step step;
    for (std::size_t r = 0; r < ranks; ++r) {
        if (facts[r] == static_cast<double>(State::Training)) {
            ++step.training_ranks;
            step.authoritative_rank = static_cast<int>(r);
        }
        if (facts[r] == static_cast<double>(State::Stopping) && step.stopping_rank < 0)
            step.stopping_rank = static_cast<int>(r);
    }
    step.divisor = options_.divide_by_initial_world_size ? group.size() : std::max(1, step.training_ranks);
    step.sync_buffers = facts[ranks] > 0;
    step.backward = facts[ranks + 1] > 0;
    return step;
}

Join::Step Join::step_as_training_rank(bool sync_buffers, bool backward) const {
    const Step step = exchange(State::Training, sync_buffers, backward);
    if (step.stopping_rank >= 0)
        throw std::runtime_error("Join: rank " + std::to_string(step.stopping_rank) + " of " +
                                 std::to_string(ddp_.group().size()) +
                                 " ran out of inputs and asked for throw_on_early_termination: every rank stops its "
                                 "loop here (" + describe_rank(ddp_.group()) + ")");
    return step;
}

void Join::join() {
    if (!options_.enable || joined_) return;
    joined_ = true;
    const ProcessGroup& group = ddp_.group();
    const State state = options_.throw_on_early_termination ? State::Stopping : State::Joined;
    bool last_to_join = true;
    for (;;) {
        const Step step = exchange(state, false, false);
        if (step.training_ranks == 0) break;
        if (options_.throw_on_early_termination)
            throw std::runtime_error("Join: " + describe_rank(group) +
                                     " ran out of inputs while other ranks still train; with "
                                     "throw_on_early_termination every rank stops its loop here");
        last_to_join = false;
        if (step.sync_buffers) ddp_.broadcast_buffers(step.authoritative_rank);
        if (step.backward) ddp_.reducer_->shadow();
    }
    std::vector<double> last(static_cast<std::size_t>(group.size()), 0.0);
    last[static_cast<std::size_t>(group.rank())] = last_to_join ? 1 : 0;
    group.all_reduce_sum(last, Channel::DataParallel);
    int source = 0;
    for (int r = 0; r < group.size(); ++r)
        if (last[static_cast<std::size_t>(r)] > 0) source = r;
    {
        NoGradGuard no_grad;
        std::vector<Tensor> state_tensors;
        for (const auto& [_, t] : ddp_.module().state_dict()) state_tensors.push_back(t);
        group.broadcast(state_tensors, source, Channel::DataParallel);
    }
    ddp_.join_ = nullptr;
}

}  // namespace tapegrad::distributed
