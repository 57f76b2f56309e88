// view as PyTorch's: strides computed in general (PyTorch's computeStride), so a view works
// wherever the memory allows it, whatever the layout, and shares the storage; where it does not,
// the error says so and names reshape.
#include <doctest/doctest.h>

#include "tapegrad.hpp"

namespace tg = tapegrad;
using tg::Tensor;

TEST_CASE("view splits and merges dimensions whose strides chain, in any layout, without a copy") {
    tg::Generator gen(1);
    const Tensor cl = tg::randn({2, 4, 3, 5}, gen).contiguous(tg::MemoryFormat::ChannelsLast);
    // H and W chain in channels-last memory: [N,C,H*W].
    const Tensor merged = cl.view({2, 4, 15});
    CHECK(merged.strides() == tg::Strides{60, 1, 4});
    CHECK(merged.data_ptr() == cl.data_ptr());
    CHECK(tg::allclose(merged, cl.contiguous().view({2, 4, 15}), 0, 0));
    // C splits: [N,2,2,H,W].
    const Tensor split = cl.view({2, 2, 2, 3, 5});
    CHECK(split.strides() == tg::Strides{60, 2, 1, 20, 4});
    CHECK(tg::allclose(split, cl.contiguous().view({2, 2, 2, 3, 5}), 0, 0));
    // A transposed matrix splits its (now outer) columns: [6,4] -> [2,3,4].
    const Tensor t = tg::randn({4, 6}, gen).transpose(0, 1);
    CHECK(tg::allclose(t.view({2, 3, 4}), t.contiguous().view({2, 3, 4}), 0, 0));
    // Writes through the view reach the base, as PyTorch's.
    Tensor base = tg::zeros({2, 3, 2, 2}).contiguous(tg::MemoryFormat::ChannelsLast);
    base.view({2, 3, 4}).fill_(1.5);
    CHECK(tg::allclose(base, tg::full({2, 3, 2, 2}, 1.5), 0, 0));
}

TEST_CASE("view refuses what the memory does not allow, naming reshape, and reshape copies then") {
    tg::Generator gen(2);
    const Tensor cl = tg::randn({2, 4, 3, 5}, gen).contiguous(tg::MemoryFormat::ChannelsLast);
    // C, H and W do not form one block in channels-last memory: PyTorch refuses this view too.
    CHECK_THROWS_WITH_AS(cl.view({2, 60}), doctest::Contains("view: the size [2,60] is not compatible"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(cl.view({2, 60}), doctest::Contains("use reshape()"), std::invalid_argument);
    const Tensor r = cl.reshape({2, 60});
    CHECK(r.data_ptr() != cl.data_ptr());
    CHECK(tg::allclose(r, cl.contiguous().view({2, 60}), 0, 0));
    // reshape returns a view whenever one exists.
    CHECK(cl.reshape({2, 4, 15}).data_ptr() == cl.data_ptr());
}
