// The float32 bandwidth sums (ops/kernels/reduce_fast.*), on shapes large enough to reach their
// vector loops and their fixed pieces: every sum the geometries cover (full, per channel in both
// layouts, rows, columns, and both with an outer kept dimension), against the double-accumulating
// reference kernel (sum_kernel) to float rounding, and the same bits at 1 and 2 threads.
#include <doctest/doctest.h>

#include <bit>
#include <optional>
#include <cmath>
#include <vector>

#include "engine/tensor_math.hpp"
#include "ops/kernels/batch_norm.hpp"
#include "ops/kernels/reduce_fast.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

struct Case {
    tg::Shape shape;
    std::vector<int64_t> axes;
    tg::MemoryFormat format;
    tg::kernels::DenseSum geometry;  // what dense_sum_geometry must find
};

std::vector<bool> mask_of(std::size_t dims, const std::vector<int64_t>& axes) {
    std::vector<bool> reduce(dims, false);
    for (int64_t a : axes) reduce[static_cast<std::size_t>(a)] = true;
    return reduce;
}

std::vector<uint32_t> bits_of(const Tensor& t) {
    std::vector<uint32_t> bits;
    for (float v : t.contiguous().to_vector<float>()) bits.push_back(std::bit_cast<uint32_t>(v));
    return bits;
}

}  // namespace

TEST_CASE("reduce fast: float32 sums equal the double reference to float rounding, and the same bits at 1 and 2 threads") {
    using tg::MemoryFormat;
    const auto cl = MemoryFormat::ChannelsLast, rm = MemoryFormat::Contiguous;
    const std::vector<Case> cases{
        {{1000003}, {0}, rm, {1, 1, 1, 1000003}},                     // a full sum, odd length
        {{8, 32, 33, 31}, {0, 1, 2, 3}, cl, {1, 1, 1, 8 * 32 * 33 * 31}},  // full sum of a channels-last tensor
        {{8, 32, 33, 31}, {0, 2, 3}, rm, {1, 8, 32, 33 * 31}},        // per channel, planes
        {{8, 40, 33, 31}, {0, 2, 3}, cl, {1, 8 * 33 * 31, 40, 1}},    // per channel, channels inner
        {{3, 5, 7, 9}, {0, 2, 3}, cl, {1, 3 * 7 * 9, 5, 1}},          // fewer channels than a vector
        {{37, 5000}, {1}, rm, {1, 1, 37, 5000}},                      // row sums
        {{5000, 37}, {0}, rm, {1, 5000, 37, 1}},                      // column sums
        {{3, 700, 1500}, {1}, rm, {3, 700, 1500, 1}},                 // columns, an outer kept dim
        {{3, 40, 5, 600}, {1, 3}, rm, {3, 40, 5, 600}},               // both
        {{2, 3000, 2100}, {1}, rm, {2, 3000, 2100, 1}},               // more columns than a block
    };
    tg::Generator gen(4);
    const int before = tg::get_num_threads();
    for (const Case& c : cases) {
        CAPTURE(tg::to_string(c.shape));
        const Tensor x = tg::uniform(c.shape, -1.0, 2.0, gen).contiguous(c.format);
        const std::vector<bool> reduce = mask_of(c.shape.size(), c.axes);
        const auto g = tg::kernels::dense_sum_geometry(x, reduce);
        REQUIRE(g.has_value());
        CHECK(g->K0 == c.geometry.K0);
        CHECK(g->R1 == c.geometry.R1);
        CHECK(g->K == c.geometry.K);
        CHECK(g->R2 == c.geometry.R2);
        const Tensor want = tg::sum_kernel(x.to(tg::kFloat64), reduce, false);
        const Tensor abs_sum = tg::sum_kernel(tg::abs(x).to(tg::kFloat64), reduce, false);
        std::vector<std::vector<uint32_t>> runs;
        for (int threads : {1, 2}) {
            tg::set_num_threads(threads);
            const Tensor got = tg::sum(x, c.axes);
            REQUIRE(got.shape() == want.shape());
            const auto w = want.to_vector<double>(), a = abs_sum.to_vector<double>();
            const auto o = got.to_vector<double>();
            // 8 float roundings a group, then double: well inside 1e-6 of the sum of magnitudes.
            int bad = 0;
            for (std::size_t i = 0; i < w.size(); ++i) bad += !(std::abs(o[i] - w[i]) <= 1e-6 * a[i] + 1e-30);
            CHECK(bad == 0);
            runs.push_back(bits_of(got));
        }
        CHECK(runs[0] == runs[1]);
    }
    tg::set_num_threads(before);
}

TEST_CASE("reduce fast: shapes outside the kernel's form go to the reference sum") {
    tg::Generator gen(5);
    const Tensor x = tg::randn({4, 6, 5}, gen);
    // Kept dimensions out of their order in memory (the output is row-major in its own order).
    CHECK_FALSE(tg::kernels::dense_sum_geometry(x.permute({2, 0, 1}), mask_of(3, {1})).has_value());
    // Summed, kept, summed, kept, summed: one group too many.
    CHECK_FALSE(tg::kernels::dense_sum_geometry(tg::randn({2, 3, 4, 5, 6}, gen), mask_of(5, {0, 2, 4})).has_value());
    // Not dense, float64, nothing summed.
    CHECK_FALSE(tg::kernels::dense_sum_geometry(x.slice(1, 0, 3), mask_of(3, {0})).has_value());
    CHECK_FALSE(tg::kernels::dense_sum_geometry(x.to(tg::kFloat64), mask_of(3, {0})).has_value());
    CHECK_FALSE(tg::kernels::dense_sum_geometry(x, mask_of(3, {})).has_value());
    // ... and still sum right.
    CHECK(tg::allclose(x.permute({2, 0, 1}).sum({1}), x.sum({0}).transpose(0, 1), 1e-5, 1e-6));
}

TEST_CASE("reduce fast: batch norm's statistics and gradient sums in float groups equal the double reference") {
    // Channels 48 = a 32-tile and a 16-tile, 40 = a 32-tile and 8 channels row by row; planes of
    // 300 values = a 256 block, a 16-step and 12 one by one. The mean is far from 0 (x in [4, 6]),
    // where E[x^2] - mean^2 in float would cancel.
    tg::Generator gen(6);
    for (const int64_t C : {48, 40}) {
        for (const auto format : {tg::MemoryFormat::Contiguous, tg::MemoryFormat::ChannelsLast}) {
            CAPTURE(C);
            CAPTURE(format == tg::MemoryFormat::ChannelsLast);
            const Tensor x = tg::uniform({6, C, 15, 20}, 4.0, 6.0, gen).contiguous(format);
            const tg::kernels::ChannelStats fast = tg::kernels::batch_norm_stats_fast(x);
            const tg::kernels::ChannelStats ref = tg::kernels::batch_norm_stats_reference<double>(x.to(tg::kFloat64));
            int bad = 0;
            for (int64_t c = 0; c < C; ++c) {
                bad += !(std::abs(fast.mean[c] - ref.mean[c]) <= 1e-6 * std::abs(ref.mean[c]));
                bad += !(std::abs(fast.var[c] - ref.var[c]) <= 1e-5 * ref.var[c]);
            }
            CHECK(bad == 0);
            // The backward's sums, plain (batch_norm) and masked by relu (batch_norm_relu), against the
            // unfused relu(batch_norm) and the reference kernels.
            const Tensor w = tg::uniform({C}, 0.5, 1.5, gen), b = tg::uniform({C}, -0.5, 0.5, gen);
            const Tensor g = tg::randn(x.shape(), gen).contiguous(format);
            auto grads = [&](bool fused, bool reference) {
                std::optional<tg::ReferenceKernelsGuard> guard;
                if (reference) guard.emplace();
                Tensor xi = x.detach().requires_grad_(), wi = w.detach().requires_grad_(), bi = b.detach().requires_grad_();
                const Tensor y = fused ? tg::batch_norm_relu(xi, Tensor(), Tensor(), wi, bi)
                                       : tg::relu(tg::batch_norm(xi, Tensor(), Tensor(), wi, bi));
                (y * g).sum().backward();
                return std::vector<Tensor>{xi.grad(), wi.grad(), bi.grad()};
            };
            const auto want = grads(false, true);
            for (const bool fused : {false, true}) {
                CAPTURE(fused);
                const auto got = grads(fused, false);
                for (std::size_t i = 0; i < 3; ++i) CHECK(tg::allclose(got[i], want[i], 1e-4, 1e-4));
            }
        }
    }
}
