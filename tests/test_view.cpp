// view as PyTorch's: strides computed in general (PyTorch's computeStride), so a view works
// wherever the memory allows it, whatever the layout, and shares the storage; where it does not,
// the error says so and names reshape. The shape and view ops on the op entry: profiled, named,
// their base's version checked.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "ops/index.hpp"
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

// The shape, view, copy and index ops run through the op entry: each is timed by the profiler as
// itself (the compositions reshape, flatten, transpose, split and chunk too), forward and, for a
// node, backward; a node reports its PyTorch-style name and shows its saved state.
TEST_CASE("shape, view and index ops are timed by the profiler and name their nodes") {
    tg::Generator gen(3);
    const Tensor x = tg::randn({4, 6}, gen, {.requires_grad = true});
    tg::Profiler prof;
    Tensor y = tg::cat({x.view({6, 4}), x.t().reshape({6, 4})}, 0);  // [12,4]; the reshape copies
    y = tg::stack({y.slice(0, 0, 12, 2), y.narrow(0, 1, 6)}, 1);       // [6,2,4]
    y = y.select(2, 3).unsqueeze(0).squeeze(0).expand({3, 6, 2}).clone().flatten();
    y = tg::cat(tg::chunk(y, 2), 0) + tg::cat(tg::split(y, int64_t{12}), 0);
    y = tg::take(y.to(tg::kFloat64), {0, 5, 35}, {3});
    y.sum().backward();
    prof.stop();
    std::map<std::string, tg::Profiler::Stats> rows;
    for (const tg::Profiler::Stats& r : prof.by_op()) rows[r.name] = r;
    for (const char* op : {"view", "transpose", "permute", "reshape", "contiguous", "cat", "slice", "narrow", "stack", "select",
                           "unsqueeze", "squeeze", "expand", "clone", "flatten", "chunk", "split", "to", "take"}) {
        INFO(op);
        REQUIRE(rows.count(op) == 1);
        CHECK(rows[op].forward_calls >= 1);
        CHECK(rows[op].forward_total_ms > 0);
    }
    // Nodes: one backward per recorded call; the compositions record none of their own.
    for (const char* op : {"cat", "stack", "slice", "select", "unsqueeze", "squeeze", "expand", "clone", "to", "take"}) {
        INFO(op);
        CHECK(rows[op].backward_calls == rows[op].forward_calls);
    }
    for (const char* op : {"reshape", "flatten", "transpose", "chunk", "split"}) CHECK(rows[op].backward_calls == 0);
    CHECK(x.grad().shape() == x.shape());

    const Tensor s = tg::slice(x, 1, 1, 5, 2);
    CHECK(s.grad_fn()->type_name() == "SliceBackward0");
    CHECK(tg::stack({x, x}).grad_fn()->type_name() == "StackBackward0");
    CHECK(tg::take(x, {1}, {1}).grad_fn()->type_name() == "TakeBackward0");
    const std::string dot = tg::to_dot(s);
    CHECK(dot.find("SliceBackward0 (slice)\\n[4,2] float32\\nsaved dim: 1\\nsaved start: 1\\nsaved length: 2\\nsaved step: 2") !=
          std::string::npos);
}

TEST_CASE("in anomaly mode a view's backward error names the view and the user's line") {
    tg::AnomalyModeGuard anomaly;
    const Tensor x = tg::tensor({1.0, 2.0, 3.0}, {.requires_grad = true});
    const Tensor y = tg::narrow(x, 0, 1, 2);
    const std::string where = "forward op 'narrow', created at test_view.cpp:" + std::to_string(__LINE__ - 1);
    CHECK_THROWS_WITH_AS(y.backward(tg::tensor({std::nan(""), 1.0})), doctest::Contains(where.c_str()), tg::AnomalyError);
}

TEST_CASE("a view's node refuses to run once its base was written in place, and in-place ops record named nodes") {
    Tensor base = tg::tensor({1.0, 2.0, 3.0}, {.requires_grad = true}) * 1.0;
    const Tensor v = base.view({3, 1});
    {
        tg::NoGradGuard no_grad;
        base.add_(1.0);
    }
    CHECK_THROWS_WITH_AS(v.sum().backward(), doctest::Contains("'view'"), std::invalid_argument);

    Tensor y = tg::tensor({1.0, 2.0}, {.requires_grad = true}) * 2.0;
    y.fill_(5.0);
    CHECK(y.grad_fn()->type_name() == "FillBackward0");
    Tensor z = tg::zeros({2});
    const Tensor src = tg::tensor({3.0, 4.0}, {.requires_grad = true});
    z.copy_(src);
    CHECK(z.grad_fn()->type_name() == "CopyBackward0");
    z.sum().backward();
    CHECK(tg::allclose(src.grad(), tg::ones({2}), 0, 0));
}
