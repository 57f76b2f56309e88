#pragma once
// libtorch's examples, transforms and datasets (torch::data::Example, transforms::Normalize,
// Lambda, Stack, datasets::MNIST, MapDataset, Dataset<Self>), for the loader in
// nn/libtorch_data.hpp, which says what differs from libtorch.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"
#include "nn/arg.hpp"
#include "nn/data.hpp"
#include "nn/dataset.hpp"
#include "ops/arithmetic.hpp"
#include "ops/shape_ops.hpp"

namespace tapegrad::libtorch::data {

// One item, or (stacked) one batch: libtorch's Example<Data, Target>.
template <class Data = Tensor, class Target = Tensor>
struct Example {
    using DataType = Data;
    using TargetType = Target;
    Example() = default;
    Example(Data data, Target target) : data(std::move(data)), target(std::move(target)) {}
    Data data;
    Target target;
};

namespace transforms {

// Turns a whole batch into another: a collation (Stack) is one from std::vector<Example> to an
// Example.
template <class InputBatch, class OutputBatch>
class BatchTransform {
public:
    using InputBatchType = InputBatch;
    using OutputBatchType = OutputBatch;
    virtual ~BatchTransform() = default;
    virtual OutputBatch apply_batch(InputBatch input_batch) = 0;
};

// Turns one example into another; a batch, example by example.
template <class Input, class Output = Input>
class Transform : public BatchTransform<std::vector<Input>, std::vector<Output>> {
public:
    using InputType = Input;
    using OutputType = Output;
    virtual Output apply(Input input) = 0;
    std::vector<Output> apply_batch(std::vector<Input> input_batch) override {
        std::vector<Output> output;
        output.reserve(input_batch.size());
        for (Input& input : input_batch) output.push_back(apply(std::move(input)));
        return output;
    }
};

// Turns an example's data and keeps its target.
template <class Target = Tensor>
class TensorTransform : public Transform<Example<Tensor, Target>> {
public:
    virtual Tensor operator()(Tensor input) = 0;
    Example<Tensor, Target> apply(Example<Tensor, Target> input) override {
        input.data = (*this)(std::move(input.data));
        return input;
    }
};

// An example transform from a function.
template <class Input, class Output = Input>
class Lambda : public Transform<Input, Output> {
public:
    explicit Lambda(std::function<Output(Input)> function) : function_(std::move(function)) {}
    Output apply(Input input) override { return function_(std::move(input)); }

private:
    std::function<Output(Input)> function_;
};

// A data transform from a function.
template <class Target = Tensor>
class TensorLambda : public TensorTransform<Target> {
public:
    explicit TensorLambda(std::function<Tensor(Tensor)> function) : function_(std::move(function)) {}
    Tensor operator()(Tensor input) override { return function_(std::move(input)); }

private:
    std::function<Tensor(Tensor)> function_;
};

// (data - mean[c]) / stddev[c] per channel of an example's data [C, ...]: one value each, or one
// per channel, as libtorch's Normalize (mean and stddev are float32 [C,1,1]).
template <class Target = Tensor>
class Normalize : public TensorTransform<Target> {
public:
    Normalize(double mean, double stddev) : Normalize(std::vector<double>{mean}, std::vector<double>{stddev}) {}
    Normalize(std::vector<double> mean, std::vector<double> stddev)
        : mean_values_(std::move(mean)), stddev_values_(std::move(stddev)) {
        if (mean_values_.empty() || mean_values_.size() != stddev_values_.size())
            throw std::invalid_argument("Normalize: give as many means as standard deviations (one, or one per channel), got " +
                                        std::to_string(mean_values_.size()) + " and " + std::to_string(stddev_values_.size()));
        const auto channels = static_cast<int64_t>(mean_values_.size());
        this->mean = from_vector(mean_values_, {channels, 1, 1}, {.dtype = kFloat32});
        this->stddev = from_vector(stddev_values_, {channels, 1, 1}, {.dtype = kFloat32});
    }
    Tensor operator()(Tensor input) override { return (input - mean) / stddev; }

    // The values as given, in double precision.
    const std::vector<double>& mean_values() const noexcept { return mean_values_; }
    const std::vector<double>& stddev_values() const noexcept { return stddev_values_; }

    Tensor mean, stddev;

private:
    std::vector<double> mean_values_, stddev_values_;
};

// A collation: from a batch of examples to one example.
template <class T, class BatchType = std::vector<T>>
using Collation = BatchTransform<BatchType, T>;

template <class T = Example<>>
struct Stack;

// Stacks the examples' data and their targets along a new first dimension.
template <>
struct Stack<Example<>> : Collation<Example<>> {
    Example<> apply_batch(std::vector<Example<>> examples) override {
        std::vector<Tensor> data, targets;
        data.reserve(examples.size());
        targets.reserve(examples.size());
        for (Example<>& e : examples) {
            data.push_back(std::move(e.data));
            targets.push_back(std::move(e.target));
        }
        return {stack(data), stack(targets)};
    }
};

}  // namespace transforms

namespace detail {
// A transform that maps each example (Normalize, Lambda); any other is a collation (Stack).
template <class T, class Input>
concept ExampleTransform = requires(T& transform, Input input) { transform.apply(std::move(input)); };

template <class T, class Input>
struct MappedExample {
    using type = Input;
};
template <class T, class Input>
    requires ExampleTransform<T, Input>
struct MappedExample<T, Input> {
    using type = decltype(std::declval<T&>().apply(std::declval<Input>()));
};

template <class T, class Input>
struct MappedBatch {
    using type = std::vector<typename MappedExample<T, Input>::type>;
};
template <class T, class Input>
    requires(!ExampleTransform<T, Input>)
struct MappedBatch<T, Input> {
    using type = decltype(std::declval<T&>().apply_batch(std::declval<std::vector<Input>>()));
};

// Whether a dataset's batches are collated (a MapDataset of Stack<>), not vectors of examples.
template <class D>
inline constexpr bool kCollates = requires { requires D::kCollates; };
}  // namespace detail

namespace datasets {

class MNIST;

// `source` with `transform` applied: to each example (Normalize), or to each batch (a collation,
// Stack<>), which must then be the last transform mapped.
template <class Source, class AppliedTransform>
class MapDataset {
public:
    static constexpr bool kCollates = !detail::ExampleTransform<AppliedTransform, typename Source::ExampleType>;
    static_assert(!detail::kCollates<Source>,
                  "map a collation (Stack<>) last: a transform mapped after it would see whole batches");

    using DatasetType = Source;
    using TransformType = AppliedTransform;
    // An item; with a collation, the source's items (the collation makes the batches).
    using ExampleType = typename detail::MappedExample<AppliedTransform, typename Source::ExampleType>::type;
    using BatchType = typename detail::MappedBatch<AppliedTransform, typename Source::ExampleType>::type;

    MapDataset(Source dataset, AppliedTransform transform) : dataset_(std::move(dataset)), transform_(std::move(transform)) {}

    ExampleType get(std::size_t index) {
        if constexpr (kCollates) {
            return dataset_.get(index);
        } else if constexpr (std::is_same_v<Source, MNIST> && std::is_same_v<AppliedTransform, transforms::Normalize<>>) {
            // Normalised as tg::nn::DataLoader's .mean/.std does, as the pixels are converted.
            if (transform_.mean_values().size() == 1)
                return dataset_.get(index, transform_.mean_values()[0], transform_.stddev_values()[0]);
            return transform_.apply(dataset_.get(index));
        } else {
            return transform_.apply(dataset_.get(index));
        }
    }
    // The collation of a batch of items.
    BatchType collate(std::vector<ExampleType> examples)
        requires kCollates
    {
        return transform_.apply_batch(std::move(examples));
    }
    std::optional<std::size_t> size() const { return dataset_.size(); }

    const Source& dataset() const noexcept { return dataset_; }
    const AppliedTransform& transform() const noexcept { return transform_; }

    template <class T>
    MapDataset<MapDataset, T> map(T transform) & {
        return {*this, std::move(transform)};
    }
    template <class T>
    MapDataset<MapDataset, T> map(T transform) && {
        return {std::move(*this), std::move(transform)};
    }

private:
    Source dataset_;
    AppliedTransform transform_;
};

// A map-style dataset of one's own:
//     class Pairs : public torch::data::datasets::Dataset<Pairs> {
//         torch::data::Example<> get(size_t index) override;
//         std::optional<size_t> size() const override;
//     };
// get() may be called from several workers at once.
template <class Self, class SingleExample = Example<>>
class Dataset {
public:
    using ExampleType = SingleExample;
    using BatchType = std::vector<SingleExample>;
    virtual ~Dataset() = default;
    virtual ExampleType get(std::size_t index) = 0;
    virtual std::optional<std::size_t> size() const = 0;

    template <class T>
    MapDataset<Self, T> map(T transform) & {
        return {static_cast<Self&>(*this), std::move(transform)};
    }
    template <class T>
    MapDataset<Self, T> map(T transform) && {
        return {std::move(static_cast<Self&>(*this)), std::move(transform)};
    }
};

// MNIST's IDX files in `root` (train-* or t10k-*, plain or gzip; nn::load_mnist): item i is image
// i as float32 [1,28,28] in [0, 1] with its label as an int64 0-d tensor. Copies share the images.
class MNIST : public Dataset<MNIST> {
public:
    enum class Mode { kTrain, kTest };

    explicit MNIST(const std::string& root, Mode mode = Mode::kTrain)
        : images_(std::make_shared<const ::tapegrad::nn::ImageDataset>(
              ::tapegrad::nn::load_mnist(root, mode == Mode::kTrain ? ::tapegrad::nn::Split::Train : ::tapegrad::nn::Split::Test))),
          mode_(mode) {}

    Example<> get(std::size_t index) override { return get(index, 0.0, 1.0); }
    // Item `index` with its image normalised: (p / 255 - mean) / stddev, as tg::nn::ImageDataset::image.
    Example<> get(std::size_t index, double mean, double stddev) const {
        const auto i = static_cast<int64_t>(index);
        return {images_->image(i, mean, stddev), images_->label(i)};
    }
    std::optional<std::size_t> size() const override { return static_cast<std::size_t>(images_->size()); }
    bool is_train() const noexcept { return mode_ == Mode::kTrain; }

    // Not libtorch's: the first n images (all when n exceeds the size), for a quick run.
    MNIST head(std::size_t n) const {
        MNIST out = *this;
        out.images_ = std::make_shared<const ::tapegrad::nn::ImageDataset>(images_->head(static_cast<int64_t>(n)));
        return out;
    }
    // The images as loaded, tapegrad's ImageDataset.
    const ::tapegrad::nn::ImageDataset& image_dataset() const noexcept { return *images_; }

private:
    std::shared_ptr<const ::tapegrad::nn::ImageDataset> images_;
    Mode mode_;
};

}  // namespace datasets

}  // namespace tapegrad::libtorch::data
