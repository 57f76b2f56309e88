#pragma once
// Datasets, as torch.utils.data: the IDX file format (MNIST, Fashion-MNIST), plain or
// gzip-compressed; map-style datasets (an abstract Dataset of examples, TensorDataset over tensors,
// ImageDataset of grey images) and iterable-style ones (IterableDataset, a stream read in order).
// nn/data.hpp batches them.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.hpp"

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

// An iterable-style dataset, as torch.utils.data.IterableDataset: a stream of examples read in
// order (records from a file, generated data). A DataLoader reads it from one thread at a time,
// batch after batch, so next() needs no locking; with workers, only collation and transforms
// run in parallel.
class IterableDataset {
public:
    virtual ~IterableDataset() = default;
    // Starts a new pass over the stream: each epoch begins with it.
    virtual void reset() = 0;
    // The next example, or std::nullopt at the end of the pass.
    virtual std::optional<Example> next() = 0;
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

}  // namespace tapegrad::nn
