#pragma once
// Batches, as torch.utils.data.DataLoader: examples of a dataset (nn/dataset.hpp) stacked into
// batches, in a seeded, shuffled order, made ahead of the loop by worker threads if asked.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"
#include "nn/dataset.hpp"
#include "nn/transforms.hpp"

namespace tapegrad::nn {

// A batch: the items' data and targets, each stacked along a new first dimension, as PyTorch's
// default collate does. From an ImageDataset: images [B,1,rows,cols] float32, normalised, and
// labels [B] int64. From any other Dataset: `images` holds the stacked Example::data and `labels`
// the stacked Example::target, whatever their dtype and shape (regression targets are float);
// `for (const auto& [x, y] : loader)` names them as a PyTorch loop does.
struct Batch {
    Tensor images;
    Tensor labels;
};

// Decides which dataset items an epoch visits and in which order, as PyTorch's Sampler does
// (distributed::DistributedSampler gives each process its own shard).
class Sampler {
public:
    virtual ~Sampler() = default;
    // The item indices of the next epoch, each in [0, dataset_size).
    virtual std::vector<int64_t> indices(int64_t dataset_size) = 0;
    // How many indices indices(dataset_size) returns.
    virtual int64_t size(int64_t dataset_size) const = 0;
};

// Unlike torch.utils.data.DataLoader (batch_size 1, shuffle false), a loader built for training:
// batches of 64 in a shuffled order unless told otherwise.
struct DataLoaderOptions {
    int64_t batch_size = 64;
    bool shuffle = true;
    bool drop_last = false;
    uint64_t seed = 0;
    // For an ImageDataset only: normalisation (x / 255 - mean) / std, with both given or neither.
    // Neither: the pixels scaled to [0, 1], as torchvision's ToTensor; a loader never guesses
    // statistics from its own data, since the test set must be normalised with the training set's.
    // To standardise, pass the training set's values to every loader:
    // auto [m, s] = train_set.pixel_mean_std(). Other datasets normalise with a transform
    // (normalize(means, stds)).
    std::optional<double> mean = std::nullopt;
    std::optional<double> std = std::nullopt;
    // When set, each epoch visits sampler->indices() in that order; shuffle must then be false
    // (the sampler does its own shuffling), as in PyTorch.
    std::shared_ptr<Sampler> sampler = nullptr;
    // Applied to each batch's images (the stacked data) after normalisation (nn/transforms.hpp):
    // augmentation such as compose({random_crop(28, 4), random_horizontal_flip(0.5)}). Its draws come
    // from a generator the loader seeds for each batch from its own, so they follow `seed`.
    Transform transform = nullptr;
    // Threads that make batches ahead of the loop, each keeping up to prefetch_factor batches
    // ready, as torch.utils.data.DataLoader's workers; 0 makes each batch in the loop's thread
    // when it is asked for. Batches come in order and with the same bits whatever the number of
    // workers. An exception thrown while making a batch (in get(), the collate function or a
    // transform) is thrown by the loop when it reaches that batch. With workers, a Dataset's
    // get() and the collate function are called from several threads at once.
    int64_t num_workers = 0;
    int64_t prefetch_factor = 2;
    // Turns a batch's examples into a Batch, as PyTorch's collate_fn; unset, each field of the
    // examples is stacked along a new first dimension (as PyTorch's default collate).
    std::function<Batch(std::vector<Example>)> collate_fn = nullptr;
};

// for (const nn::Batch& batch : loader) { ... }  Each pass over the loader is one epoch, in a new
// order drawn from the loader's generator when shuffling.
class DataLoader {
public:
    // Any dataset; its items are read through get() as each batch is made. An ImageDataset's
    // pixels are normalised with options.mean and options.std, whichever way it is passed.
    DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
    DataLoader(ImageDataset dataset, DataLoaderOptions options = {});
    // An iterable-style dataset: read in its own order, so neither shuffle nor a sampler (as in
    // PyTorch), and no mean/std (pass a transform).
    DataLoader(std::shared_ptr<IterableDataset> stream, DataLoaderOptions options = {});
    DataLoader(DataLoader&&) noexcept;
    DataLoader& operator=(DataLoader&&) noexcept;
    ~DataLoader();

    // Items per epoch: the dataset's size, or the sampler's. A stream has no length: both throw
    // std::logic_error for one, as len() of PyTorch's loader over an IterableDataset.
    int64_t num_items() const;
    // Batches per epoch (0 for an empty dataset).
    int64_t num_batches() const;
    // The map-style dataset as given (for an ImageDataset, the images; their normalisation is the
    // loader's); std::logic_error for a stream.
    const Dataset& dataset() const;
    // The normalisation in use: (x / 255 - mean()) / stddev().
    double mean() const { return mean_; }
    double stddev() const { return std_; }
    // The shuffling generator, for checkpoints.
    Generator& generator() { return gen_; }

    // Starts an epoch, reshuffling when shuffle is on.
    void reset();
    // The next batch of the current epoch; false at the end.
    bool next(Batch& batch);

    class iterator {
    public:
        iterator(DataLoader* loader, bool end);
        const Batch& operator*() const { return batch_; }
        const Batch* operator->() const { return &batch_; }
        iterator& operator++();
        bool operator!=(const iterator& other) const { return loader_ != other.loader_; }

    private:
        DataLoader* loader_;
        Batch batch_;
    };
    iterator begin() { return iterator(this, false); }
    iterator end() { return iterator(nullptr, true); }

private:
    class Epoch;  // one pass: its order, its batch seed and its workers (nn/data.cpp)

    std::shared_ptr<const Dataset> source_;   // what the caller gave
    std::shared_ptr<const Dataset> dataset_;  // what batches are made of: source_, or its images normalised
    std::shared_ptr<IterableDataset> stream_;  // or an iterable-style dataset
    DataLoaderOptions options_;
    double mean_ = 0, std_ = 1;
    Generator gen_;
    std::unique_ptr<Epoch> epoch_;  // none before the first reset()
};

}  // namespace tapegrad::nn
