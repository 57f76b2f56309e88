#include "distributed/data_parallel.hpp"

#include <stdexcept>

#include "distributed/join.hpp"
#include "distributed/reducer.hpp"
#include "engine/autograd.hpp"

namespace tapegrad::distributed {
namespace {

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
    const std::vector<std::string> all = group.all_gather(join_lines(describe_state(module)), Channel::DataParallel);
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
        group_.broadcast(state, 0, Channel::DataParallel);
    }
    reducer_ = std::make_unique<detail::Reducer>(*module_, group_, options_);
}

DistributedDataParallel::~DistributedDataParallel() = default;

Tensor DistributedDataParallel::forward(const Tensor& x) { return forward_inputs({x}); }

Tensor DistributedDataParallel::forward_inputs(const std::vector<Tensor>& inputs) {
    if (reducer_->collecting())
        throw std::logic_error("DistributedDataParallel: the previous backward's gradients are not reduced yet; "
                               "call synchronize() after backward and before the next forward");
    const bool with_grad = is_grad_enabled();
    bool sync_buffers = options_.broadcast_buffers && sync_buffers_next_ && !module_->buffers().empty();
    int source = 0;
    int divisor = group_.size();
    if (join_) {
        const Join::Step step = join_->step_as_training_rank(sync_buffers, with_grad);
        sync_buffers = step.sync_buffers;
        source = step.authoritative_rank;
        divisor = step.divisor;
    }
    reducer_->set_divisor(divisor);
    if (sync_buffers) broadcast_buffers(source);
    sync_buffers_next_ = with_grad;
    return module_->forward_inputs(inputs);
}

void DistributedDataParallel::broadcast_buffers(int root) {
    NoGradGuard no_grad;
    group_.broadcast(module_->buffers(), root, Channel::DataParallel);
}

void DistributedDataParallel::synchronize() { reducer_->finish(); }

std::vector<std::vector<std::size_t>> DistributedDataParallel::bucket_layout() const { return reducer_->layout(); }

const ReducerStats& DistributedDataParallel::stats() const { return reducer_->stats(); }

}  // namespace tapegrad::distributed
