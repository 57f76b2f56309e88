// The DataLoader's workers, collate function and iterable datasets: the same batches, bit for bit,
// whatever the number of workers; errors raised in the loop at their batch; a stream read in order.
#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor_math.hpp"
#include "nn/data.hpp"
#include "ops/arithmetic.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

std::vector<nn::Batch> one_epoch(nn::DataLoader& loader) {
    std::vector<nn::Batch> out;
    for (const nn::Batch& b : loader) out.push_back(b);
    return out;
}

bool same_bits(const std::vector<nn::Batch>& a, const std::vector<nn::Batch>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].images.shape() != b[i].images.shape() || tg::max_abs_diff(a[i].images, b[i].images) != 0.0 ||
            a[i].labels.to_vector<int64_t>() != b[i].labels.to_vector<int64_t>())
            return false;
    return true;
}

std::vector<int64_t> labels_of(const std::vector<nn::Batch>& batches) {
    std::vector<int64_t> out;
    for (const nn::Batch& b : batches)
        for (int64_t v : b.labels.to_vector<int64_t>()) out.push_back(v);
    return out;
}

std::shared_ptr<nn::TensorDataset> random_images(int64_t n) {
    tg::Generator gen(21);
    std::vector<int64_t> labels(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = i;
    return std::make_shared<nn::TensorDataset>(tg::randn({n, 3, 8, 8}, gen), tg::from_vector(labels, {n}));
}

// Item `bad` throws when read.
class FailingDataset : public nn::Dataset {
public:
    FailingDataset(int64_t size, int64_t bad) : size_(size), bad_(bad) {}
    int64_t size() const override { return size_; }
    nn::Example get(int64_t index) const override {
        if (index == bad_) throw std::runtime_error("item " + std::to_string(index) + " is corrupt");
        return {tg::full({2}, static_cast<double>(index)), tg::scalar_tensor(static_cast<double>(index), {.dtype = tg::kInt64})};
    }

private:
    int64_t size_, bad_;
};

// 0, 1, ..., n - 1, read in order; counts its passes.
class CountingStream : public nn::IterableDataset {
public:
    explicit CountingStream(int64_t n) : n_(n) {}
    void reset() override {
        next_ = 0;
        ++passes;
    }
    std::optional<nn::Example> next() override {
        if (next_ >= n_) return std::nullopt;
        const double v = static_cast<double>(next_++);
        return nn::Example{tg::full({1}, v), tg::scalar_tensor(v, {.dtype = tg::kInt64})};
    }
    int passes = 0;

private:
    int64_t n_, next_ = 0;
};


}  // namespace

TEST_CASE("DataLoader workers: the same batches, bit for bit, whatever the number of workers") {
    const auto data = random_images(50);
    auto epochs_with = [&](int64_t workers) {
        nn::DataLoader loader(data, {.batch_size = 7, .shuffle = true, .seed = 3,
                                     .transform = nn::compose({nn::random_crop(8, 2), nn::random_horizontal_flip(0.5)}),
                                     .num_workers = workers});
        std::vector<nn::Batch> first = one_epoch(loader), second = one_epoch(loader);
        first.insert(first.end(), second.begin(), second.end());
        return first;
    };
    const std::vector<nn::Batch> reference = epochs_with(0);
    REQUIRE(reference.size() == 16);  // 2 epochs of ceil(50 / 7)
    // The transform drew: the same order without it gives other images (crops and flips happened).
    nn::DataLoader untransformed(data, {.batch_size = 7, .shuffle = true, .seed = 3});
    const std::vector<nn::Batch> plain = one_epoch(untransformed);
    CHECK(labels_of(plain) == labels_of(std::vector<nn::Batch>(reference.begin(), reference.begin() + 8)));
    CHECK_FALSE(same_bits(plain, std::vector<nn::Batch>(reference.begin(), reference.begin() + 8)));
    for (int64_t workers : {1, 2, 4}) CHECK(same_bits(epochs_with(workers), reference));
    // Another seed gives other crops and another order.
    nn::DataLoader other(data, {.batch_size = 7, .shuffle = true, .seed = 4,
                                .transform = nn::compose({nn::random_crop(8, 2), nn::random_horizontal_flip(0.5)})});
    CHECK_FALSE(same_bits(one_epoch(other), std::vector<nn::Batch>(reference.begin(), reference.begin() + 8)));
}

TEST_CASE("DataLoader workers: an error while making a batch is raised by the loop at that batch") {
    for (int64_t workers : {0, 2}) {
        CAPTURE(workers);
        nn::DataLoader loader(std::make_shared<FailingDataset>(20, 13), {.batch_size = 5, .shuffle = false, .num_workers = workers});
        loader.reset();
        nn::Batch b;
        REQUIRE(loader.next(b));
        CHECK(b.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
        REQUIRE(loader.next(b));
        CHECK_THROWS_WITH_AS(loader.next(b), "item 13 is corrupt", std::runtime_error);
        // The epoch goes on after the failed batch, as the loop decides.
        REQUIRE(loader.next(b));
        CHECK(b.labels.to_vector<int64_t>() == std::vector<int64_t>{15, 16, 17, 18, 19});
        CHECK_FALSE(loader.next(b));
    }
}

TEST_CASE("DataLoader workers: leaving an epoch early stops the workers") {
    nn::DataLoader loader(random_images(200), {.batch_size = 2, .num_workers = 3, .prefetch_factor = 4});
    for (int epoch = 0; epoch < 3; ++epoch) {
        int seen = 0;
        for (const nn::Batch& b : loader) {
            CHECK(b.images.size(0) == 2);
            if (++seen == 3) break;
        }
        CHECK(seen == 3);
    }
}

TEST_CASE("DataLoader: a collate function makes the batch") {
    std::atomic<int> calls{0};
    auto sum_pairs = [&](std::vector<nn::Example> examples) {
        ++calls;
        Tensor total = examples[0].data;
        for (std::size_t i = 1; i < examples.size(); ++i) total = total + examples[i].data;
        return nn::Batch{total, tg::scalar_tensor(static_cast<double>(examples.size()), {.dtype = tg::kInt64})};
    };
    for (int64_t workers : {0, 2}) {
        calls = 0;
        nn::DataLoader loader(std::make_shared<FailingDataset>(7, -1),
                              {.batch_size = 3, .shuffle = false, .num_workers = workers, .collate_fn = sum_pairs});
        const std::vector<nn::Batch> batches = one_epoch(loader);
        REQUIRE(batches.size() == 3);
        CHECK(batches[1].images.to_vector<float>() == std::vector<float>{12, 12});  // 3 + 4 + 5
        CHECK(batches[2].labels.item<int64_t>() == 1);
        CHECK(calls == 3);
    }
}

TEST_CASE("DataLoader over an iterable dataset: read in order, each epoch a new pass") {
    for (int64_t workers : {0, 3}) {
        CAPTURE(workers);
        auto stream = std::make_shared<CountingStream>(23);
        nn::DataLoader loader(stream, {.batch_size = 5, .shuffle = false, .num_workers = workers});
        std::vector<int64_t> expected(23);
        for (int64_t i = 0; i < 23; ++i) expected[static_cast<std::size_t>(i)] = i;
        const std::vector<nn::Batch> first = one_epoch(loader);
        CHECK(first.size() == 5);
        CHECK(first.back().images.size(0) == 3);
        CHECK(labels_of(first) == expected);
        CHECK(labels_of(one_epoch(loader)) == expected);
        CHECK(stream->passes == 2);
        nn::DataLoader dropping(stream, {.batch_size = 5, .shuffle = false, .drop_last = true, .num_workers = workers});
        CHECK(one_epoch(dropping).size() == 4);
        CHECK_THROWS_AS(loader.num_batches(), std::logic_error);
    }
    auto stream = std::make_shared<CountingStream>(3);
    CHECK_THROWS_WITH_AS(nn::DataLoader(stream, {}), doctest::Contains("shuffle = false"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(nn::DataLoader(stream, {.shuffle = false, .mean = 0.5, .std = 0.2}), doctest::Contains("transform"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(nn::DataLoader(random_images(4), {.num_workers = -1}), doctest::Contains("num_workers"),
                         std::invalid_argument);
}
