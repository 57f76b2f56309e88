#pragma once
// DistributedSampler: each rank's share of a dataset for one epoch, as PyTorch's
// torch.utils.data.distributed.DistributedSampler draws it.
//
//   auto sampler = std::make_shared<distributed::DistributedSampler>(group.size(), group.rank(),
//                                                                    distributed::SamplerOptions{.seed = 0});
//   nn::DataLoader loader(train_set, {.batch_size = 64, .shuffle = false, .sampler = sampler});
//   for (epoch ...) { sampler->set_epoch(epoch); for (const nn::Batch& b : loader) ... }
//
// Every rank permutes the whole index range with the same generator, seeded with seed + epoch,
// and takes every num_replicas-th index starting at its rank: the shards are disjoint, together
// they cover the dataset, and a new epoch reshuffles them without any communication.
#include <cstdint>
#include <vector>

#include "nn/data.hpp"

namespace tapegrad::distributed {

// What to do when the dataset does not divide evenly among the ranks.
enum class Remainder {
    // PyTorch's default (drop_last=False): repeat the first indices of the permutation until it
    // divides, so every rank takes the same number of steps; a few items count twice per epoch.
    Pad,
    // PyTorch's drop_last=True: drop the tail of the permutation so that it divides.
    Drop,
    // No padding, nothing dropped: the first (size % num_replicas) ranks get one item more.
    // For evaluation, where every item must count exactly once; ranks may take different numbers
    // of steps, so use it where no collective runs per step, or for training inside a Join.
    Uneven,
};

struct SamplerOptions {
    bool shuffle = true;
    uint64_t seed = 0;  // the same on every rank
    Remainder remainder = Remainder::Pad;
};

class DistributedSampler : public nn::Sampler {
public:
    // Throws std::invalid_argument unless num_replicas >= 1 and 0 <= rank < num_replicas.
    DistributedSampler(int num_replicas, int rank, SamplerOptions options = {});

    // The epoch reseeds the shuffle: call it before each epoch, as in PyTorch.
    void set_epoch(int64_t epoch) { epoch_ = epoch; }
    int64_t epoch() const { return epoch_; }

    std::vector<int64_t> indices(int64_t dataset_size) override;
    int64_t size(int64_t dataset_size) const override;

private:
    int num_replicas_;
    int rank_;
    SamplerOptions options_;
    int64_t epoch_ = 0;
};

}  // namespace tapegrad::distributed
