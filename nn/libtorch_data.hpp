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
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "engine/generator.hpp"
#include "nn/arg.hpp"
#include "nn/data.hpp"
#include "nn/libtorch_datasets.hpp"

namespace tapegrad::libtorch::data {

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
