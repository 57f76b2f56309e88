#pragma once
// Data, as torch.utils.data: the IDX file format (MNIST, Fashion-MNIST), plain or gzip-compressed;
// datasets (an abstract Dataset of examples, TensorDataset over tensors, ImageDataset of grey
// images); and a DataLoader that stacks examples into batches in a seeded, shuffled order.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"
#include "nn/transforms.hpp"

namespace tapegrad::nn {

// An unsigned-byte IDX array: dims and the values in row-major order.
struct IdxArray {
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
};

inline constexpr uint32_t kIdxImagesMagic = 0x00000803;  // ubyte, 3 dims: count, rows, cols
inline constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // ubyte, 1 dim: count
inline constexpr std::size_t kIdxMaxBytes = std::size_t{1} << 30;

// Parses an uncompressed IDX buffer whose magic must be `expected_magic`; the dims must be
// non-zero, at most 10,000,000 items of at most 4096 x 4096, and the data must fill the rest of
// the buffer exactly. Errors (std::runtime_error) name `source` and the problem.
IdxArray parse_idx(const uint8_t* data, std::size_t size, uint32_t expected_magic, const std::string& source = "buffer");
// Gunzips a buffer that starts with the gzip magic (1f 8b); other buffers come back as they are.
// The output is capped at kIdxMaxBytes.
std::vector<uint8_t> maybe_gunzip(const uint8_t* data, std::size_t size, const std::string& source = "buffer");
// The whole path from file bytes (plain or gzip) to an array: the entry point for fuzzing.
IdxArray decode_idx(const uint8_t* data, std::size_t size, uint32_t expected_magic, const std::string& source = "buffer");
// Reads a file, gunzipping it when it is gzip, and parses it. Errors (std::runtime_error) start with
// "read_idx: " and name the path: a directory, a missing file or one over 1 GiB is refused before
// it is read.
IdxArray read_idx(const std::string& path, uint32_t expected_magic);

// One item of a dataset: PyTorch's (data, target) pair.
struct Example {
    Tensor data;    // e.g. an image [C,H,W], or a feature vector [F]
    Tensor target;  // e.g. an int64 class index (0-d), or float regression targets [T]
};

// A map-style dataset, as torch.utils.data.Dataset: size() items, item i from get(i). A DataLoader
// stacks the items of a batch, so every item's data must have one shape and dtype, and every
// item's target too.
class Dataset {
public:
    virtual ~Dataset() = default;
    virtual int64_t size() const = 0;
    // Item `index`, 0 <= index < size(); an index outside throws std::invalid_argument.
    virtual Example get(int64_t index) const = 0;
};

// As torch.utils.data.TensorDataset(data, targets): item i is (data[i], targets[i]), views into
// the two tensors, which may have any dtype and shape; their first dimension counts the items,
// and must agree. E.g. images [N,3,32,32] float32 with labels [N] int64, or features [N,F] with
// float targets [N,T] for regression. The tensors are kept detached.
class TensorDataset : public Dataset {
public:
    TensorDataset(Tensor data, Tensor targets);
    int64_t size() const override { return data_.size(0); }
    Example get(int64_t index) const override;
    const Tensor& data() const { return data_; }
    const Tensor& targets() const { return targets_; }

private:
    Tensor data_, targets_;
};

// Grey images with integer labels, as stored: pixels 0..255. A Dataset whose item i is image i as
// float32 [1,rows,cols] scaled to [0, 1] (torchvision's ToTensor) with its label as an int64 0-d
// tensor; DataLoader(ImageDataset, options) applies the options' normalisation on top.
struct ImageDataset : Dataset {
    int64_t count = 0, rows = 0, cols = 0;
    std::vector<uint8_t> pixels;  // count * rows * cols
    std::vector<int64_t> labels;  // count

    // The first `n` items (all when n exceeds count).
    ImageDataset head(int64_t n) const;
    // Throws std::invalid_argument naming `who` unless the sizes are non-negative, their product
    // fits in 64 bits and the pixels and labels hold exactly count * rows * cols and count values.
    void check(const std::string& who) const;
    // Mean and (population) standard deviation of the pixels scaled to [0, 1].
    std::pair<double, double> pixel_mean_std() const;

    int64_t size() const override { return count; }
    Example get(int64_t index) const override { return {image(index), label(index)}; }
    // Image `index` as float32 [1,rows,cols]: (p / 255 - mean) / stddev for each pixel p.
    Tensor image(int64_t index, double mean = 0.0, double stddev = 1.0) const;
    // Label `index` as an int64 0-d tensor.
    Tensor label(int64_t index) const;
};

enum class Split { Train, Test };
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Loads `dir`/{train,t10k}-{images-idx3,labels-idx1}-ubyte, each plain or with ".gz"; any
// directory of MNIST-format files works. Checks that images and labels agree in count. Errors
// (std::runtime_error) start with "load_mnist: " and name the file.
ImageDataset load_mnist(const std::string& dir, Split split);
inline ImageDataset load_fashion_mnist(const std::string& dir = kFashionMnistDir, Split split = Split::Train) {
    return load_mnist(dir, split);
}

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
    // augmentation such as compose({random_crop(28, 4, seed), random_horizontal_flip(0.5, seed)}).
    Transform transform = nullptr;
};

// for (const nn::Batch& batch : loader) { ... }  Each pass over the loader is one epoch, in a new
// order drawn from the loader's generator when shuffling.
class DataLoader {
public:
    // Any dataset; its items are read through get() as each batch is made. An ImageDataset's
    // pixels are normalised with options.mean and options.std, whichever way it is passed.
    DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
    DataLoader(ImageDataset dataset, DataLoaderOptions options = {});

    // Items per epoch: the dataset's size, or the sampler's.
    int64_t num_items() const;
    // Batches per epoch (0 for an empty dataset).
    int64_t num_batches() const;
    // The dataset as given (for an ImageDataset, the images; their normalisation is the loader's).
    const Dataset& dataset() const { return *source_; }
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
    std::shared_ptr<const Dataset> source_;   // what the caller gave
    std::shared_ptr<const Dataset> dataset_;  // what batches are made of: source_, or its images normalised
    DataLoaderOptions options_;
    double mean_ = 0, std_ = 1;
    Generator gen_;
    std::vector<int64_t> order_;
    int64_t cursor_ = 0;
};

}  // namespace tapegrad::nn
