#include "distributed/sampler.hpp"

#include <numeric>
#include <stdexcept>
#include <string>

#include "engine/generator.hpp"

namespace tapegrad::distributed {

DistributedSampler::DistributedSampler(int num_replicas, int rank, SamplerOptions options)
    : num_replicas_(num_replicas), rank_(rank), options_(options) {
    if (num_replicas < 1 || rank < 0 || rank >= num_replicas)
        throw std::invalid_argument("DistributedSampler: rank " + std::to_string(rank) + " is not in [0, " +
                                    std::to_string(num_replicas) + ") (num_replicas " + std::to_string(num_replicas) +
                                    "); pass the process group's size and rank");
}

int64_t DistributedSampler::size(int64_t dataset_size) const {
    if (dataset_size < 0)
        throw std::invalid_argument("DistributedSampler: negative dataset size " + std::to_string(dataset_size));
    const int64_t n = num_replicas_;
    switch (options_.remainder) {
    case Remainder::Pad: return (dataset_size + n - 1) / n;
    case Remainder::Drop: return dataset_size / n;
    case Remainder::Uneven: break;
    }
    return dataset_size / n + (rank_ < dataset_size % n ? 1 : 0);
}

std::vector<int64_t> DistributedSampler::indices(int64_t dataset_size) {
    const int64_t per_rank = size(dataset_size);
    std::vector<int64_t> order(static_cast<std::size_t>(dataset_size));
    std::iota(order.begin(), order.end(), 0);
    if (options_.shuffle && dataset_size > 1) {
        // The DataLoader's Fisher-Yates, seeded identically on every rank.
        Generator gen(options_.seed + static_cast<uint64_t>(epoch_));
        for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[gen.below(i + 1)]);
    }
    std::vector<int64_t> mine;
    mine.reserve(static_cast<std::size_t>(per_rank));
    // Position k of this rank's shard is position rank + k * num_replicas of the permutation,
    // which wraps around to its start when padding.
    for (int64_t k = 0; k < per_rank; ++k) {
        const int64_t position = rank_ + k * num_replicas_;
        mine.push_back(order[static_cast<std::size_t>(position % dataset_size)]);
    }
    return mine;
}

}  // namespace tapegrad::distributed
