#include "nn/data.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "engine/autograd.hpp"
#include "ops/shape_ops.hpp"

namespace tapegrad::nn {
namespace {

// An ImageDataset's items normalised with the loader's statistics.
class NormalizedImages : public Dataset {
public:
    NormalizedImages(std::shared_ptr<const ImageDataset> images, double mean, double stddev)
        : images_(std::move(images)), mean_(mean), std_(stddev) {}
    int64_t size() const override { return images_->size(); }
    Example get(int64_t index) const override { return {images_->image(index, mean_, std_), images_->label(index)}; }

private:
    std::shared_ptr<const ImageDataset> images_;
    double mean_, std_;
};

// The items' `what` (data or target) stacked along a new first dimension, after checking that they
// can be: defined, one shape and one dtype.
Tensor stack_field(const std::vector<Tensor>& parts, const std::vector<int64_t>& items, const char* what) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (!parts[i].defined())
            throw std::invalid_argument("DataLoader: item " + std::to_string(items[i]) + " has an undefined " + what +
                                        " tensor; the dataset's get() must fill both data and target");
        if (parts[i].shape() != parts[0].shape() || parts[i].dtype() != parts[0].dtype())
            throw std::invalid_argument("DataLoader: cannot stack the batch's " + std::string(what) + ": item " +
                                        std::to_string(items[i]) + " is " + describe(parts[i]) + " but item " +
                                        std::to_string(items[0]) + " is " + describe(parts[0]) +
                                        "; give every item one shape and dtype (crop, pad or resize in the dataset's "
                                        "get()), or use batch_size 1");
    }
    return stack(parts);
}

// PyTorch's default collate for (data, target) examples; `items` names them in errors.
Batch default_collate(std::vector<Example> examples, const std::vector<int64_t>& items) {
    std::vector<Tensor> data, targets;
    data.reserve(examples.size());
    targets.reserve(examples.size());
    for (Example& e : examples) {
        data.push_back(std::move(e.data));
        targets.push_back(std::move(e.target));
    }
    return {stack_field(data, items, "data"), stack_field(targets, items, "target")};
}

// Batch `index`'s own generator seed: the epoch's seed moved along by an odd constant per batch,
// so that no two batches of an epoch share a stream, whoever makes them and in whatever order.
uint64_t batch_seed(uint64_t epoch_seed, int64_t index) {
    return epoch_seed + static_cast<uint64_t>(index) * 0xD1B54A32D192ED03ULL;
}

}  // namespace

// ---------------------------------------------------------------- one epoch

// The batches of one pass. Batch `index` depends only on the order, the epoch's seed and `index`,
// so the loop's thread (no workers) and any number of workers make the same bits. Workers claim
// positions in order, at most `window` ahead of the loop; the loop takes them in order.
class DataLoader::Epoch {
public:
    Epoch(std::shared_ptr<const Dataset> dataset, std::shared_ptr<IterableDataset> stream, const DataLoaderOptions& options,
          std::vector<int64_t> order, uint64_t seed)
        : dataset_(std::move(dataset)), stream_(std::move(stream)), options_(options), order_(std::move(order)), seed_(seed) {
        if (dataset_) end_ = batches_in(static_cast<int64_t>(order_.size()));
        window_ = options_.num_workers * options_.prefetch_factor;
        for (int64_t w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { work(); });
    }

    ~Epoch() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        work_ready_.notify_all();
        for (std::thread& worker : workers_) worker.join();
    }

    bool next(Batch& batch) {
        Made made;
        if (workers_.empty()) {
            if (handed_ >= end_) return false;
            made = make(handed_++);
            if (!made.batch && !made.error) end_ = handed_ - 1;
        } else {
            std::unique_lock lock(mutex_);
            if (handed_ >= end_) return false;
            batch_ready_.wait(lock, [&] { return ready_.count(handed_) > 0; });
            made = std::move(ready_.extract(handed_++).mapped());
            lock.unlock();
            work_ready_.notify_all();
        }
        if (made.error) std::rethrow_exception(made.error);
        if (!made.batch) return false;
        batch = std::move(*made.batch);
        return true;
    }

private:
    // What making one batch gave: the batch, an error, or neither when the epoch has ended.
    struct Made {
        std::optional<Batch> batch;
        std::exception_ptr error;
    };

    int64_t batches_in(int64_t items) const {
        const int64_t b = options_.batch_size;
        return options_.drop_last || items % b == 0 ? items / b : items / b + 1;
    }

    // A worker: claim the next position while the window allows, make it, hand it over.
    void work() {
        for (;;) {
            int64_t index;
            {
                std::unique_lock lock(mutex_);
                work_ready_.wait(lock, [&] { return stopping_ || claimed_ >= end_ || claimed_ < handed_ + window_; });
                if (stopping_ || claimed_ >= end_) return;
                index = claimed_++;
            }
            Made made = make(index);
            {
                std::lock_guard lock(mutex_);
                if (!made.batch && !made.error) end_ = std::min(end_, index);
                ready_.emplace(index, std::move(made));
            }
            batch_ready_.notify_all();
            work_ready_.notify_all();
        }
    }

    Made make(int64_t index) {
        Made made;
        try {
            std::vector<Example> examples;
            std::vector<int64_t> items;
            if (!read(index, examples, items)) return made;
            // Loading data is not part of a model: no history, even from a dataset holding tensors
            // that require grad.
            NoGradGuard no_grad;
            Batch batch = options_.collate_fn ? options_.collate_fn(std::move(examples))
                                              : default_collate(std::move(examples), items);
            if (options_.transform) {
                Generator gen(batch_seed(seed_, index));
                batch.images = options_.transform(batch.images, gen);
            }
            made.batch = std::move(batch);
        } catch (...) {
            made.error = std::current_exception();
        }
        return made;
    }

    // Batch `index`'s examples and their item numbers; false when the epoch has no such batch.
    bool read(int64_t index, std::vector<Example>& examples, std::vector<int64_t>& items) {
        const int64_t b = options_.batch_size;
        if (dataset_) {
            const int64_t begin = index * b, count = std::min<int64_t>(b, static_cast<int64_t>(order_.size()) - begin);
            if (count <= 0) return false;
            items.assign(order_.begin() + begin, order_.begin() + begin + count);
            for (int64_t item : items) examples.push_back(dataset_->get(item));
            return true;
        }
        // A stream is read one batch at a time, in batch order, whichever thread makes the batch.
        std::unique_lock lock(stream_mutex_);
        stream_turn_.wait(lock, [&] { return stream_next_ == index; });
        struct NextTurn {  // the next batch's turn comes even when this read throws
            Epoch& epoch;
            ~NextTurn() {
                ++epoch.stream_next_;
                epoch.stream_turn_.notify_all();
            }
        } next_turn{*this};
        while (!stream_ended_ && static_cast<int64_t>(examples.size()) < b) {
            std::optional<Example> e = stream_->next();
            if (!e) {
                stream_ended_ = true;
                break;
            }
            items.push_back(index * b + static_cast<int64_t>(examples.size()));
            examples.push_back(std::move(*e));
        }
        return !examples.empty() && !(options_.drop_last && static_cast<int64_t>(examples.size()) < b);
    }

    const std::shared_ptr<const Dataset> dataset_;
    const std::shared_ptr<IterableDataset> stream_;
    const DataLoaderOptions options_;
    const std::vector<int64_t> order_;
    const uint64_t seed_;

    std::mutex stream_mutex_;
    std::condition_variable stream_turn_;
    int64_t stream_next_ = 0;
    bool stream_ended_ = false;

    std::mutex mutex_;
    std::condition_variable work_ready_, batch_ready_;
    std::map<int64_t, Made> ready_;
    int64_t claimed_ = 0, handed_ = 0, window_ = 0;
    int64_t end_ = INT64_MAX;  // the first position with no batch, once known
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

// ---------------------------------------------------------------- DataLoader

namespace {
void check_common_options(const DataLoaderOptions& options) {
    if (options.batch_size <= 0)
        throw std::invalid_argument("DataLoader: batch_size must be positive, got " + std::to_string(options.batch_size));
    if (options.num_workers < 0)
        throw std::invalid_argument("DataLoader: num_workers must not be negative, got " + std::to_string(options.num_workers));
    if (options.num_workers > 0 && options.prefetch_factor <= 0)
        throw std::invalid_argument("DataLoader: prefetch_factor must be positive with workers, got " +
                                    std::to_string(options.prefetch_factor));
}
}  // namespace

DataLoader::DataLoader(ImageDataset dataset, DataLoaderOptions options)
    : DataLoader(std::make_shared<const ImageDataset>(std::move(dataset)), std::move(options)) {}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : source_(std::move(dataset)), options_(std::move(options)), gen_(options_.seed) {
    if (!source_) throw std::invalid_argument("DataLoader: the dataset is null; pass std::make_shared<...>(...)");
    check_common_options(options_);
    if (options_.mean.has_value() != options_.std.has_value())
        throw std::invalid_argument("DataLoader: give both mean and std, or neither");
    auto images = std::dynamic_pointer_cast<const ImageDataset>(source_);
    if (options_.mean && !images)
        throw std::invalid_argument("DataLoader: mean and std normalise an ImageDataset's pixels; for other datasets "
                                    "pass .transform = nn::normalize(means, stds) instead");
    if (options_.mean) {
        mean_ = *options_.mean;
        std_ = *options_.std;
    }
    if (!std::isfinite(mean_) || !(std_ > 0) || !std::isfinite(std_))
        throw std::invalid_argument("DataLoader: the normalisation needs a finite mean and a finite, positive std, got mean " +
                                    std::to_string(mean_) + " and std " + std::to_string(std_));
    if (options_.sampler && options_.shuffle)
        throw std::invalid_argument("DataLoader: a sampler decides the order itself; pass .shuffle = false with it");
    if (images) {
        images->check("DataLoader");
        dataset_ = std::make_shared<NormalizedImages>(std::move(images), mean_, std_);
    } else {
        dataset_ = source_;
    }
    if (dataset_->size() < 0)
        throw std::invalid_argument("DataLoader: the dataset's size() is " + std::to_string(dataset_->size()) +
                                    "; it must not be negative");
}

DataLoader::DataLoader(std::shared_ptr<IterableDataset> stream, DataLoaderOptions options)
    : stream_(std::move(stream)), options_(std::move(options)), gen_(options_.seed) {
    if (!stream_) throw std::invalid_argument("DataLoader: the dataset is null; pass std::make_shared<...>(...)");
    check_common_options(options_);
    if (options_.shuffle || options_.sampler)
        throw std::invalid_argument("DataLoader: an iterable dataset is read in its own order; pass .shuffle = false and "
                                    "no sampler (shuffle inside the dataset)");
    if (options_.mean || options_.std)
        throw std::invalid_argument("DataLoader: mean and std normalise an ImageDataset's pixels; for an iterable dataset "
                                    "pass .transform = nn::normalize(means, stds) instead");
}

DataLoader::DataLoader(DataLoader&&) noexcept = default;
DataLoader& DataLoader::operator=(DataLoader&&) noexcept = default;
DataLoader::~DataLoader() = default;

const Dataset& DataLoader::dataset() const {
    if (!source_) throw std::logic_error("DataLoader: an iterable dataset is not a map-style Dataset");
    return *source_;
}

int64_t DataLoader::num_items() const {
    if (stream_) throw std::logic_error("DataLoader: an iterable dataset has no length");
    return options_.sampler ? options_.sampler->size(dataset_->size()) : dataset_->size();
}

int64_t DataLoader::num_batches() const {
    // Not (n + b - 1) / b, which overflows for a huge batch size.
    const int64_t b = options_.batch_size, n = num_items();
    const int64_t full = n / b;
    return options_.drop_last || n % b == 0 ? full : full + 1;
}

void DataLoader::reset() {
    epoch_.reset();  // the last epoch's workers stop before this one's order is drawn
    std::vector<int64_t> order;
    if (stream_) {
        stream_->reset();
    } else if (options_.sampler) {
        const int64_t n = dataset_->size();
        order = options_.sampler->indices(n);
        for (int64_t item : order)
            if (item < 0 || item >= n)
                throw std::out_of_range("DataLoader: the sampler gave index " + std::to_string(item) +
                                        " for a dataset of " + std::to_string(n) + " items");
    } else {
        order.resize(static_cast<std::size_t>(dataset_->size()));
        std::iota(order.begin(), order.end(), 0);
        if (options_.shuffle) {
            // Fisher-Yates with the project's generator: same seed, same order everywhere.
            for (std::size_t i = order.size(); i-- > 1;) std::swap(order[i], order[gen_.below(i + 1)]);
        }
    }
    // Only a transform draws: without one the loader's generator moves as it always did.
    const uint64_t seed = options_.transform ? gen_.next_u64() : 0;
    epoch_ = std::make_unique<Epoch>(dataset_, stream_, options_, std::move(order), seed);
}

bool DataLoader::next(Batch& batch) { return epoch_ && epoch_->next(batch); }

DataLoader::iterator::iterator(DataLoader* loader, bool end) : loader_(end ? nullptr : loader) {
    if (loader_) {
        loader_->reset();
        if (!loader_->next(batch_)) loader_ = nullptr;
    }
}

DataLoader::iterator& DataLoader::iterator::operator++() {
    if (loader_ && !loader_->next(batch_)) loader_ = nullptr;
    return *this;
}

}  // namespace tapegrad::nn
