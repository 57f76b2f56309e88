#pragma once
// libtorch's data API (torch::data, through libtorch.hpp), built on tapegrad's datasets and
// DataLoader (nn/dataset.hpp, nn/data.hpp):
//
//     auto dataset = torch::data::datasets::MNIST(root)
//                        .map(torch::data::transforms::Normalize<>(0.1307, 0.3081))
//                        .map(torch::data::transforms::Stack<>());
//     auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(std::move(dataset), 64);
//     for (auto& batch : *loader) model->forward(batch.data), batch.target;
//
// A dataset of one's own derives from datasets::Dataset<Self> and gives get(index) and size().
// The loader is a tg::nn::DataLoader underneath: its batches come in order and have the same bits
// whatever the number of workers, and they are the batches tg::nn::DataLoader makes of the same
// items in the same order. What differs from libtorch:
// - the random sampler (make_data_loader's default) shuffles with tapegrad's generator, seeded
//   from the default generator when the loader is made, so it follows torch::manual_seed;
// - MNIST normalised by one mean and standard deviation (its .map(Normalize<>(m, s))) is
//   normalised as its pixels are converted, as tg::nn::DataLoader's .mean/.std:
//   p * (1 / (255 s)) - m / s in float32, within an ulp or two of libtorch's (p / 255 - m) / s;
// - a batch without a collation (no .map(Stack<>())) is std::vector<Example<>>, made in the loop's
//   thread; Stack<>'s batches (and another collation's) are made by the workers;
// - MNIST::head(n) keeps the first n images (not in libtorch; for a quick run).
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

namespace samplers {
// Which order make_data_loader<Sampler> visits the items in: 0, 1, 2, ... or a shuffled one per
// epoch (libtorch's default).
struct SequentialSampler {};
struct RandomSampler {};
}  // namespace samplers

// libtorch's loader options: batch_size (1 by default, as libtorch's), workers (threads making
// batches ahead of the loop), max_jobs (batches in flight; 2 per worker unless given), drop_last
// (leave out a last, smaller batch). Batches always come in order (enforce_ordering is accepted).
class DataLoaderOptions {
public:
    DataLoaderOptions() = default;
    DataLoaderOptions(std::size_t batch_size) : batch_size_(batch_size) {}  // NOLINT: implicit, as libtorch's

    TAPEGRAD_ARG(std::size_t, batch_size) = 1;
    TAPEGRAD_ARG(std::size_t, workers) = 0;
    TAPEGRAD_ARG(std::optional<std::size_t>, max_jobs);
    TAPEGRAD_ARG(bool, drop_last) = false;
    TAPEGRAD_ARG(bool, enforce_ordering) = true;
};

namespace detail {
// The items of a torch::data dataset as a tg::nn::Dataset, for tg::nn::DataLoader. Its get() is
// called from the loader's workers, as libtorch's loader calls a dataset's get() from its workers.
template <class D>
class ItemsOf : public ::tapegrad::nn::Dataset {
public:
    ItemsOf(std::shared_ptr<D> dataset, int64_t size) : dataset_(std::move(dataset)), size_(size) {}
    int64_t size() const override { return size_; }
    ::tapegrad::nn::Example get(int64_t index) const override {
        auto example = dataset_->get(static_cast<std::size_t>(index));
        return {std::move(example.data), std::move(example.target)};
    }

private:
    std::shared_ptr<D> dataset_;
    int64_t size_;
};

// Item i as i itself (int64 0-d, twice): the loader then batches indices, in its order, and the
// loop reads the items.
class Indices : public ::tapegrad::nn::Dataset {
public:
    explicit Indices(int64_t size) : size_(size) {}
    int64_t size() const override { return size_; }
    ::tapegrad::nn::Example get(int64_t index) const override {
        Tensor i = scalar_tensor(static_cast<double>(index), {.dtype = kInt64});
        return {i, i};
    }

private:
    int64_t size_;
};
}  // namespace detail

// Made by make_data_loader: `for (auto& batch : *loader)` is one epoch, a batch being
// Dataset::BatchType (Example<> after Stack<>, else std::vector of the dataset's examples).
template <class D, class Sampler>
class StatelessDataLoader {
public:
    using BatchType = typename D::BatchType;

    StatelessDataLoader(D dataset, DataLoaderOptions options)
        : dataset_(std::make_shared<D>(std::move(dataset))), options_(std::move(options)), loader_(make_loader()) {}

    class Iterator {
    public:
        explicit Iterator(StatelessDataLoader* loader) : loader_(loader) {
            if (loader_) advance();
        }
        BatchType& operator*() { return batch_; }
        BatchType* operator->() { return &batch_; }
        Iterator& operator++() {
            advance();
            return *this;
        }
        bool operator==(const Iterator& other) const { return loader_ == other.loader_; }

    private:
        void advance() {
            if (!loader_->next(batch_)) loader_ = nullptr;
        }
        StatelessDataLoader* loader_;
        BatchType batch_;
    };

    // Starts an epoch (a new order, with the random sampler).
    Iterator begin() {
        loader_.reset();
        return Iterator(this);
    }
    Iterator end() { return Iterator(nullptr); }

    const DataLoaderOptions& options() const noexcept { return options_; }

private:
    ::tapegrad::nn::DataLoader make_loader() {
        const std::optional<std::size_t> size = dataset_->size();
        if (!size)
            throw std::invalid_argument("make_data_loader: the dataset has no size (its size() returned std::nullopt); "
                                        "a map-style dataset must give its number of items");
        if (options_.batch_size() == 0)
            throw std::invalid_argument("make_data_loader: batch_size must be positive, got 0");
        const auto n = static_cast<int64_t>(*size);
        ::tapegrad::nn::DataLoaderOptions tg_options{.batch_size = static_cast<int64_t>(options_.batch_size()),
                                         .shuffle = std::is_same_v<Sampler, samplers::RandomSampler>,
                                         .drop_last = options_.drop_last()};
        if (tg_options.shuffle) {
            Generator& gen = default_generator();
            const auto lock = gen.lock();
            tg_options.seed = gen.next_u64();
        }
        std::shared_ptr<const ::tapegrad::nn::Dataset> items;
        if constexpr (detail::kCollates<D>) {
            tg_options.num_workers = static_cast<int64_t>(options_.workers());
            if (options_.workers() > 0 && options_.max_jobs())
                tg_options.prefetch_factor = std::max<int64_t>(1, static_cast<int64_t>(*options_.max_jobs() / options_.workers()));
            // Stack<> is the loader's own collation; another one is called on the examples.
            if constexpr (!std::is_same_v<typename D::TransformType, transforms::Stack<>>)
                tg_options.collate_fn = [dataset = dataset_](std::vector<::tapegrad::nn::Example> examples) {
                    std::vector<typename D::ExampleType> batch;
                    batch.reserve(examples.size());
                    for (::tapegrad::nn::Example& e : examples) batch.push_back({std::move(e.data), std::move(e.target)});
                    Example<> collated = dataset->collate(std::move(batch));
                    return ::tapegrad::nn::Batch{std::move(collated.data), std::move(collated.target)};
                };
            items = std::make_shared<detail::ItemsOf<D>>(dataset_, n);
        } else {
            items = std::make_shared<detail::Indices>(n);
        }
        return ::tapegrad::nn::DataLoader(std::move(items), std::move(tg_options));
    }

    bool next(BatchType& batch) {
        ::tapegrad::nn::Batch made;
        if (!loader_.next(made)) return false;
        if constexpr (detail::kCollates<D>) {
            batch = BatchType{std::move(made.images), std::move(made.labels)};
        } else {
            batch.clear();
            for (int64_t index : made.images.template to_vector<int64_t>())
                batch.push_back(dataset_->get(static_cast<std::size_t>(index)));
        }
        return true;
    }

    std::shared_ptr<D> dataset_;
    DataLoaderOptions options_;
    ::tapegrad::nn::DataLoader loader_;
};

// libtorch's make_data_loader: a loader of `dataset` in batches of `batch_size` (or as `options`
// say), in the Sampler's order (random unless SequentialSampler is named).
template <class Sampler = samplers::RandomSampler, class D>
std::unique_ptr<StatelessDataLoader<D, Sampler>> make_data_loader(D dataset, DataLoaderOptions options = {}) {
    static_assert(std::is_same_v<Sampler, samplers::SequentialSampler> || std::is_same_v<Sampler, samplers::RandomSampler>,
                  "make_data_loader: the sampler is SequentialSampler or RandomSampler");
    return std::make_unique<StatelessDataLoader<D, Sampler>>(std::move(dataset), std::move(options));
}
template <class Sampler = samplers::RandomSampler, class D>
std::unique_ptr<StatelessDataLoader<D, Sampler>> make_data_loader(D dataset, std::size_t batch_size) {
    return make_data_loader<Sampler>(std::move(dataset), DataLoaderOptions(batch_size));
}

}  // namespace tapegrad::libtorch::data
