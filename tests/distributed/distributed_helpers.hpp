#pragma once
// What the data-parallel tests share: the group, small models and data that are the same on
// every rank unless a seed says otherwise.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "distributed/data_parallel.hpp"
#include "distributed/process_group.hpp"
#include "distributed/sync_batch_norm.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace dist = tapegrad::distributed;
using tg::Tensor;

namespace distributed_test {

inline dist::ProcessGroup& group() {
    static dist::ProcessGroup& g = [&]() -> dist::ProcessGroup& {
        tg::set_num_threads(1);  // one core per rank
        return dist::ProcessGroup::world();
    }();
    return g;
}

// A small model without BatchNorm: conv, relu, pool, linear.
inline std::shared_ptr<nn::Sequential> make_plain_model(uint64_t seed, int64_t classes = 3) {
    tg::Generator gen(seed);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(1, 4, 3, gen, tg::Conv2dOptions{.padding = 1}),
        std::make_shared<nn::ReLU>(),
        std::make_shared<nn::MaxPool2d>(tg::Pool2dOptions{.kernel_size = 2}),
        std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(4 * 4 * 4, 8, gen),
        std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(8, classes, gen),
    });
}

enum class Norm { PerRank, Sync };

inline std::shared_ptr<nn::Sequential> make_bn_model(uint64_t seed, Norm norm = Norm::PerRank, double dropout = 0.3) {
    tg::Generator gen(seed);
    std::shared_ptr<nn::Module> bn;
    if (norm == Norm::Sync) bn = std::make_shared<dist::SyncBatchNorm>(4);
    else bn = std::make_shared<nn::BatchNorm2d>(4);
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(1, 4, 3, gen, tg::Conv2dOptions{.padding = 1}),
        bn,
        std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Dropout>(dropout, seed),
        std::make_shared<nn::Linear>(4 * 8 * 8, 3, gen),
    });
}

// The largest |a - b| over two tensors of one shape, relative to b's largest element (float
// rounding scales with the tensor, and a gradient that is zero in exact arithmetic, such as the
// bias of a conv followed by batch norm, is rounding noise on both sides).
inline double worst_relative_error(const Tensor& a, const Tensor& b) {
    const auto x = a.contiguous().to_vector<float>(), y = b.contiguous().to_vector<float>();
    REQUIRE(x.size() == y.size());
    double worst = 0, scale = 1e-3;
    for (std::size_t k = 0; k < x.size(); ++k) {
        worst = std::max(worst, std::abs(double(x[k]) - y[k]));
        scale = std::max(scale, std::abs(double(y[k])));
    }
    return worst / scale;
}

// `rows` images [1,8,8] and labels, drawn from `seed`: the same on every rank.
struct Data {
    std::vector<float> pixels;
    std::vector<int64_t> labels;
};
inline Data make_data(int64_t rows, uint64_t seed) {
    tg::Generator gen(seed);
    Data d;
    d.pixels = tg::randn({rows, 1, 8, 8}, gen).to_vector<float>();
    for (int64_t i = 0; i < rows; ++i) d.labels.push_back(static_cast<int64_t>(gen.below(3)));
    return d;
}
// Rows [first, first + count) as a batch.
inline std::pair<Tensor, std::vector<int64_t>> rows_of(const Data& d, int64_t first, int64_t count) {
    const std::vector<float> px(d.pixels.begin() + first * 64, d.pixels.begin() + (first + count) * 64);
    return {tg::from_vector(px, {count, 1, 8, 8}),
            std::vector<int64_t>(d.labels.begin() + first, d.labels.begin() + first + count)};
}

inline std::string raw_bytes(const std::vector<Tensor>& tensors) {
    std::string out;
    for (const Tensor& t : tensors) {
        const std::vector<float> v = t.contiguous().to_vector<float>();
        out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    }
    return out;
}

// Two linear heads on one input; the second only when use_second is set.
struct TwoHeads : nn::Module {
    std::shared_ptr<nn::Linear> first, second;
    bool use_second = true;
    explicit TwoHeads(tg::Generator& gen) : Module("TwoHeads") {
        first = register_module("first", std::make_shared<nn::Linear>(4, 2, gen));
        second = register_module("second", std::make_shared<nn::Linear>(4, 2, gen));
    }
    Tensor forward(const Tensor& x) override {
        Tensor y = first->forward(x);
        return use_second ? y + second->forward(x) : y;
    }
};

}  // namespace distributed_test
