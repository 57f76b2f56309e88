// The channels-last max-pool kernel (vectorized over C, with a scalar tail) against the row-major
// one and the reference kernel: the same values, the same winners for ties and NaN, so the same
// gradients and indices, on a channel count that is neither a whole number of vectors nor below
// one, with and without dilation and ceil_mode.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/generator.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/pooling.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

std::vector<uint32_t> bits(const Tensor& t) {
    std::vector<uint32_t> out;
    for (float v : t.contiguous().to_vector<float>()) out.push_back(std::bit_cast<uint32_t>(v));
    return out;
}

struct Pooled {
    std::vector<uint32_t> out, grad;
    std::vector<int64_t> indices;
};

Pooled pool(const Tensor& x0, tg::MemoryFormat format, bool reference, const tg::Pool2dOptions& o) {
    const tg::ReferenceKernelsGuard guard(reference);
    // A fresh leaf each time (contiguous() hands back x0 itself when it is already in `format`).
    Tensor x = x0.contiguous(format).detach().requires_grad_();
    auto [y, indices] = tg::max_pool2d_with_indices(x, o);
    (y * tg::arange(y.numel()).reshape(y.shape())).sum().backward();
    return {bits(y), bits(x.grad()), indices.to_vector<int64_t>()};
}

}  // namespace

TEST_CASE("max_pool2d channels-last: same values, ties and NaN winners as row-major and the reference") {
    tg::Generator gen(3);
    // Values rounded to a coarse grid make ties common; a few NaNs must win their windows.
    std::vector<float> v = tg::randn({3, 19, 9, 8}, gen).to_vector<float>();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::round(v[i] * 2.0f) / 2.0f;
    for (std::size_t i = 5; i < v.size(); i += 97) v[i] = std::numeric_limits<float>::quiet_NaN();
    const Tensor x = tg::from_vector(v, {3, 19, 9, 8});
    for (const tg::Pool2dOptions& o : {tg::Pool2dOptions{.kernel_size = 2, .stride = tg::Pair(2)},
                                       tg::Pool2dOptions{.kernel_size = 3, .stride = tg::Pair(2), .padding = 1},
                                       tg::Pool2dOptions{.kernel_size = 3, .stride = tg::Pair(2), .padding = 1, .dilation = 2, .ceil_mode = true},
                                       tg::Pool2dOptions{.kernel_size = {2, 3},
                                                         .stride = tg::Pair{1, 2},
                                                         .padding = {1, 0},
                                                         .dilation = {3, 1},
                                                         .ceil_mode = true}}) {
        CAPTURE(o.kernel_size.h);
        const Pooled cl = pool(x, tg::MemoryFormat::ChannelsLast, false, o);
        const Pooled rm = pool(x, tg::MemoryFormat::Contiguous, false, o);
        const Pooled ref = pool(x, tg::MemoryFormat::Contiguous, true, o);
        CHECK(cl.out == ref.out);
        CHECK(cl.grad == ref.grad);
        CHECK(rm.out == ref.out);
        CHECK(rm.grad == ref.grad);
        CHECK(cl.indices == ref.indices);
        CHECK(rm.indices == ref.indices);
    }
}
