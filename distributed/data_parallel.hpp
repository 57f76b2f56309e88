#pragma once
// DistributedDataParallel: the same model on every rank, each rank on its own shard of the data,
// the gradients averaged over the ranks after every backward pass, as in PyTorch's
// torch.nn.parallel.DistributedDataParallel.
//
//   auto model = std::make_shared<SmallCNN>(gen);
//   auto ddp = std::make_shared<distributed::DistributedDataParallel>(model);  // broadcasts rank 0's weights
//   nn::AdamW optimizer(ddp->parameters(), options);
//   for (const nn::Batch& batch : loader) {              // loader with a DistributedSampler
//       Tensor loss = cross_entropy(ddp->forward(batch.images), batch.labels);
//       optimizer.zero_grad();
//       loss.backward();                                 // all-reduces start during backward
//       ddp->synchronize();                              // the averaged gradients are in .grad()
//       optimizer.step();
//   }
//
// The wrapper registers the model as its child "module", as PyTorch does; save and load
// checkpoints through ddp->module() so that they stay interchangeable with single-process ones.
//
// Gradients travel in buckets: the parameters that require grad, in reverse registration order
// (roughly the order backward produces them), grouped until a bucket holds bucket_cap_mb; one
// non-blocking all-reduce per bucket. Each parameter's post-accumulate-grad hook tells the
// reducer when backward has finished its gradient; a bucket starts as soon as all of its
// gradients are final, while backward goes on with the layers before. Buckets are started in the
// same order on every rank, as MPI requires of collectives: a bucket that is ready waits for the
// ones before it. When backward has produced every gradient, the last hook waits for the
// all-reduces and writes the averages, so .grad() is averaged when backward returns;
// synchronize() then only confirms it. It is still needed after every backward, as PyTorch's
// reducer would need find_unused_parameters: a parameter that got no gradient on some rank
// (a branch not taken) is only reduced there, and on the other ranks, in synchronize().
//
// Unused parameters follow PyTorch's find_unused_parameters=True: a parameter that some ranks
// used gets the sum over the ranks divided by the world size (zeros from the others); one that
// no rank used keeps its .grad() as it was (undefined after zero_grad), so the optimizer skips
// it, momentum and weight decay included, as in single-process training.
//
// Uneven inputs (a rank with fewer batches than another): wrap the training loop in a
// distributed::Join (join.hpp).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "distributed/process_group.hpp"
#include "nn/module.hpp"

namespace tapegrad::distributed {

class Join;
namespace detail {
class Reducer;
}

struct DataParallelOptions {
    // Bucket size in MiB (PyTorch's bucket_cap_mb). Small buckets start reducing earlier in
    // backward; large ones send fewer, more efficient messages. A parameter larger than the cap
    // gets a bucket of its own.
    double bucket_cap_mb = 25.0;
    // true: a bucket's all-reduce starts from the gradients' post-accumulate hooks, as soon as
    // backward has produced all of the bucket's gradients, and overlaps the rest of backward.
    // false: every bucket starts in synchronize(), after backward (the baseline to measure the
    // overlap against).
    bool overlap_with_backward = true;
    // PyTorch's broadcast_buffers: rank 0's buffers (BatchNorm running statistics) are copied to
    // every rank before a forward that follows a forward with gradients enabled, in training or
    // eval mode alike (PyTorch's rule), so the replicas stay identical, evaluation after training
    // gives the same outputs everywhere, and rank 0's checkpoint holds what every rank uses.
    // Forwards under NoGradGuard after the first do not broadcast, so ranks may evaluate
    // different numbers of batches. Normalisation itself always uses this rank's batch
    // (per-rank statistics) unless the model uses SyncBatchNorm.
    bool broadcast_buffers = true;
};

// Time the reducer spent, for measurements.
struct ReducerStats {
    int64_t rounds = 0;          // backward passes reduced
    double wait_seconds = 0;     // waiting for all-reduces to finish (in the last hook or in
                                 // synchronize())
    double launch_seconds = 0;   // packing buckets and starting their all-reduces
};

class DistributedDataParallel : public nn::Module {
public:
    // Checks that every rank has the same parameters and buffers (names, dtypes, shapes) and
    // throws std::invalid_argument on every rank naming the first difference; then copies rank 0's
    // parameters and buffers to every rank. Collective: every rank must construct it.
    explicit DistributedDataParallel(std::shared_ptr<nn::Module> module, DataParallelOptions options = {},
                                     ProcessGroup& group = ProcessGroup::world());
    ~DistributedDataParallel() override;

    // Runs the model (with one input, or several through ddp(x, skip)). Throws std::logic_error
    // when a backward ran since the last reduction and synchronize() was not called (its gradients
    // are not averaged yet). Collective when it broadcasts the buffers or runs inside a Join.
    Tensor forward(const Tensor& x) override;
    Tensor forward_inputs(const std::vector<Tensor>& inputs) override;

    // Waits until every bucket is reduced and writes the averages into the parameters' .grad();
    // a no-op when the hooks already did. Call it between backward and optimizer.step().
    // Parameters that got no gradient from this backward on some rank count as zeros there;
    // those that no rank used keep their .grad(); every rank ends with the same .grad().
    // Collective: every rank must call it once per backward.
    void synchronize();

    nn::Module& module() const { return *module_; }
    ProcessGroup& group() const { return group_; }
    const DataParallelOptions& options() const { return options_; }
    // The buckets as indices into parameters() (those that require grad), in launch order.
    std::vector<std::vector<std::size_t>> bucket_layout() const;
    const ReducerStats& stats() const;

private:
    friend class Join;
    // Copies rank `root`'s buffers to every rank.
    void broadcast_buffers(int root);

    std::shared_ptr<nn::Module> module_;
    ProcessGroup& group_;
    DataParallelOptions options_;
    std::unique_ptr<detail::Reducer> reducer_;
    // PyTorch's require_forward_param_sync: the last forward ran with gradients enabled.
    bool sync_buffers_next_ = true;
    Join* join_ = nullptr;  // the Join this rank is training in, if any
};

}  // namespace tapegrad::distributed
