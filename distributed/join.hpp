#pragma once
// Join: data-parallel training with uneven inputs, as PyTorch's DistributedDataParallel.join()
// (torch.distributed.algorithms.Join). A rank that runs out of batches before the others calls
// join(): until every rank has joined, it shadows the collectives of the ranks still training
// (each of their forwards and backwards), contributing zeros, so that they finish their epoch
// instead of waiting for it forever.
//
//   {
//       distributed::Join join(*ddp);                 // every rank, around the loop
//       for (const nn::Batch& batch : loader) {       // e.g. a DistributedSampler with Remainder::Uneven
//           Tensor loss = cross_entropy(ddp->forward(batch.images), batch.labels);
//           optimizer.zero_grad();
//           loss.backward();
//           ddp->synchronize();
//           optimizer.step();
//       }
//       join.join();                                  // out of data: shadow the others until all are done
//   }
//
// Inside a Join, every forward through the wrapper first all-reduces one small vector saying
// which ranks still train, whether the buffers are to be broadcast and whether a backward
// follows (PyTorch sends the same facts in up to three all-reduces). A forward with gradients
// enabled counts as followed by backward and synchronize(); run any other forward under
// NoGradGuard, or the ranks that joined wait for gradients that never come (until the timeout). The buffers come from the
// highest rank still training (rank 0 may have joined with stale ones). When every rank has
// joined, the model of the last rank to join (the highest, if several) is broadcast to all, so
// the replicas end identical; optimizer state stays per rank, as in PyTorch.
//
// Only the wrapper's collectives are shadowed: SyncBatchNorm's, or the program's own (a
// per-step metric all-reduce), cannot be. With SyncBatchNorm, pass throw_on_early_termination
// (the constructor refuses otherwise); without it, any other collective in the loop would wait
// until the group's timeout.
#include <string>

#include "distributed/data_parallel.hpp"

namespace tapegrad::distributed {

struct JoinOptions {
    // PyTorch's default (true): the summed gradients are divided by the world size even after
    // some ranks joined (they contribute zeros), so every sample weighs the same in every step.
    // false: divided by the number of ranks still training, as if the world had shrunk.
    bool divide_by_initial_world_size = true;
    // false: the Join does nothing (inputs known to be even).
    bool enable = true;
    // true: the first rank to run out makes every rank throw std::runtime_error, out of join()
    // there and out of the wrapper's forward on the others, instead of shadowing; the ranks may
    // then catch it and go on together (the next epoch, evaluation).
    bool throw_on_early_termination = false;
};

class Join {
public:
    // Every rank constructs it before its loop. Throws std::invalid_argument when the model has
    // SyncBatchNorm layers and throw_on_early_termination is off, std::logic_error when the
    // wrapper already has a Join.
    explicit Join(DistributedDataParallel& ddp, JoinOptions options = {});
    // Calls join() if the scope ends without an exception and join() was not called; a failure
    // there ends the job (ProcessGroup::abort), since a destructor cannot throw.
    ~Join();
    Join(const Join&) = delete;
    Join& operator=(const Join&) = delete;

    // This rank has no more batches: shadows the others' steps until every rank has joined, then
    // makes the replicas identical. Collective. Throws std::runtime_error under
    // throw_on_early_termination when other ranks still train, and past the group's timeout.
    void join();

private:
    friend class DistributedDataParallel;
    // What every rank learns at each step of a rank still training.
    struct Step {
        int training_ranks = 0;
        int authoritative_rank = -1;  // the highest rank still training
        int stopping_rank = -1;       // the first that ran out under throw_on_early_termination
        int divisor = 1;              // of the summed gradients
        bool sync_buffers = false;
        bool backward = false;        // a backward follows this forward
    };
    enum class State { Joined = 0, Training = 1, Stopping = 2 };
    Step exchange(State state, bool sync_buffers, bool backward) const;
    // Called by the wrapper's forward on a rank that still trains.
    Step step_as_training_rank(bool sync_buffers, bool backward) const;

    DistributedDataParallel& ddp_;
    JoinOptions options_;
    bool joined_ = false;
    int exceptions_at_entry_;
};

}  // namespace tapegrad::distributed
