// conv2d and pooling: hand-worked examples (a 3x3 by 2x2 convolution, a 4x4 max-pool) as exact tests, the
// max-pool tie rule, bad inputs, the channels-last fast path and the oneDNN primitive cache.
#include <doctest/doctest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include "engine/autograd.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "engine/generator.hpp"
#include "engine/gradcheck.hpp"
#include "ops/conv_transpose.hpp"
#include "ops/arithmetic.hpp"
#include "ops/kernels/conv_onednn.hpp"
#include "ops/pooling.hpp"

namespace tg = tapegrad;
using tg::Tensor;

namespace {

// A [1,1,H,W] tensor from rows.
Tensor image(std::initializer_list<std::initializer_list<double>> rows, tg::DType dtype, bool requires_grad = false) {
    Tensor t = tg::tensor(rows).to(dtype);
    t = t.reshape({1, 1, t.size(0), t.size(1)}).detach();
    t.requires_grad_(requires_grad);
    return t;
}

// Exact equality, element by element, whatever the layouts.
bool same_values(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && tg::max_abs_diff(a, b) == 0.0; }

Tensor channels_last(const Tensor& t, bool requires_grad) {
    Tensor c = t.detach().contiguous(tg::MemoryFormat::ChannelsLast);
    c.requires_grad_(requires_grad);
    return c;
}

// The message of the std::invalid_argument that f throws ("" if it throws nothing).
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("conv2d: the worked 3x3 by 2x2 example, forward and every gradient") {
    // float64 runs the reference kernel, float32 the oneDNN one.
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        CAPTURE(tg::dtype_name(dtype));
        Tensor x = image({{1, 2, 0}, {0, 1, 3}, {2, 1, 1}}, dtype, true);
        Tensor k = image({{1, 0}, {0, -1}}, dtype, true);
        Tensor b = tg::zeros({1}, {.dtype = dtype, .requires_grad = true});
        Tensor s = tg::conv2d(x, k, b);
        CHECK(same_values(s, image({{0, -1}, {-1, 0}}, dtype)));
        s.backward(image({{1, 2}, {0, -1}}, dtype));
        CHECK(same_values(k.grad(), image({{4, -1}, {1, 6}}, dtype)));
        CHECK(same_values(b.grad(), tg::tensor({2.0}).to(dtype)));
        CHECK(same_values(x.grad(), image({{1, 2, 0}, {0, -2, -2}, {0, 0, 1}}, dtype)));
    }
}

TEST_CASE("conv2d: the float32 oneDNN path and the reference agree on the worked example") {
    Tensor x = image({{1, 2, 0}, {0, 1, 3}, {2, 1, 1}}, tg::kFloat32);
    Tensor k = image({{1, 0}, {0, -1}}, tg::kFloat32);
    Tensor fast = tg::conv2d(x, k);
    tg::ReferenceKernelsGuard reference;
    CHECK(same_values(fast, tg::conv2d(x, k)));
}

TEST_CASE("conv2d: only the gradients asked for are computed") {
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        CAPTURE(tg::dtype_name(dtype));
        // A frozen weight with a trainable bias: db comes from a plain reduction.
        Tensor x = image({{1, 2, 0}, {0, 1, 3}, {2, 1, 1}}, dtype);
        Tensor k = image({{1, 0}, {0, -1}}, dtype);
        Tensor b = tg::zeros({1}, {.dtype = dtype, .requires_grad = true});
        tg::conv2d(x, k, b).backward(image({{1, 2}, {0, -1}}, dtype));
        CHECK(same_values(b.grad(), tg::tensor({2.0}).to(dtype)));
        CHECK_FALSE(k.grad().defined());
        // Only the input: the first layer of a network frozen for feature extraction.
        Tensor xi = image({{1, 2, 0}, {0, 1, 3}, {2, 1, 1}}, dtype, true);
        tg::conv2d(xi, k, tg::zeros({1}, {.dtype = dtype})).backward(image({{1, 2}, {0, -1}}, dtype));
        CHECK(same_values(xi.grad(), image({{1, 2, 0}, {0, -2, -2}, {0, 0, 1}}, dtype)));
    }
}

TEST_CASE("max_pool2d: the worked 4x4 example, and its backward routes to each argmax") {
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        for (bool cl : {false, true}) {
            CAPTURE(tg::dtype_name(dtype));
            CAPTURE(cl);
            Tensor x = image({{1, 3, 2, 4}, {5, 6, 1, 2}, {1, 2, 3, 0}, {0, 1, 1, 4}}, dtype, !cl);
            if (cl) x = channels_last(x, true);
            Tensor y = tg::max_pool2d(x, {.kernel_size = 2});
            CHECK(same_values(y, image({{6, 4}, {2, 4}}, dtype)));
            y.backward(image({{10, 20}, {30, 40}}, dtype));
            CHECK(same_values(x.grad(), image({{0, 0, 0, 20}, {0, 10, 0, 0}, {0, 30, 0, 0}, {0, 0, 0, 40}}, dtype)));
        }
    }
}

TEST_CASE("max_pool2d: a tie goes to the first maximum in row-major window order") {
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        for (bool cl : {false, true}) {
            CAPTURE(tg::dtype_name(dtype));
            CAPTURE(cl);
            // Window 1: all equal -> (0,0). Window 2: the 7s at (0,3) and (1,2) -> (0,3).
            Tensor x = image({{2, 2, 1, 7}, {2, 2, 7, 0}}, dtype, !cl);
            if (cl) x = channels_last(x, true);
            tg::max_pool2d(x, {.kernel_size = 2}).backward(image({{1, 1}}, dtype));
            CHECK(same_values(x.grad(), image({{1, 0, 0, 1}, {0, 0, 0, 0}}, dtype)));
        }
    }
}

TEST_CASE("max_pool2d: overlapping windows add their gradients at a shared maximum") {
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        CAPTURE(tg::dtype_name(dtype));
        Tensor x = image({{0, 1, 0}, {1, 9, 1}, {0, 1, 0}}, dtype, true);
        Tensor y = tg::max_pool2d(x, {.kernel_size = 2, .stride = 1});
        CHECK(same_values(y, image({{9, 9}, {9, 9}}, dtype)));
        y.backward(image({{1, 2}, {3, 4}}, dtype));
        CHECK(same_values(x.grad(), image({{0, 0, 0}, {0, 10, 0}, {0, 0, 0}}, dtype)));
    }
}

TEST_CASE("max_pool2d: padding counts as -inf, even against negative inputs") {
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        CAPTURE(tg::dtype_name(dtype));
        Tensor x = image({{-5, -6}, {-7, -8}}, dtype);
        CHECK(same_values(tg::max_pool2d(x, {.kernel_size = 2, .stride = 1, .padding = 1}),
                          image({{-5, -5, -6}, {-5, -5, -6}, {-7, -7, -8}}, dtype)));
    }
}

TEST_CASE("avg_pool2d counts padding in the divisor; adaptive bins follow floor/ceil") {
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
        CAPTURE(tg::dtype_name(dtype));
        Tensor x = image({{1, 2}, {3, 4}}, dtype, true);
        // Every 3x3 window around a 2x2 input holds all four values and five zeros of padding.
        Tensor y = tg::avg_pool2d(x, {.kernel_size = 3, .stride = 1, .padding = 1});
        CHECK(tg::allclose(y, image({{10.0 / 9, 10.0 / 9}, {10.0 / 9, 10.0 / 9}}, dtype), 1e-6));
        y.sum().backward();
        CHECK(tg::allclose(x.grad(), image({{4.0 / 9, 4.0 / 9}, {4.0 / 9, 4.0 / 9}}, dtype), 1e-6));

        // 5 columns into 3 bins: [0,2), [1,4), [3,5).
        Tensor r = image({{1, 2, 3, 4, 5}}, dtype, true);
        Tensor a = tg::adaptive_avg_pool2d(r, {1, 3});
        CHECK(tg::allclose(a, image({{1.5, 3, 4.5}}, dtype), 1e-6));
        a.backward(image({{6, 3, 12}}, dtype));
        CHECK(tg::allclose(r.grad(), image({{3, 4, 1, 7, 6}}, dtype), 1e-6));

        // Global average pooling.
        CHECK(tg::allclose(tg::adaptive_avg_pool2d(image({{1, 2, 3}, {4, 5, 9}}, dtype), 1), image({{4}}, dtype), 1e-6));
    }
}

TEST_CASE("conv2d: bad inputs are refused with a message that names the op") {
    const Tensor x = tg::zeros({2, 3, 8, 8}), w = tg::zeros({4, 3, 3, 3}), b = tg::zeros({4});
    struct Bad {
        const char* what;
        std::function<void()> call;
        const char* says;
    };
    const std::vector<Bad> table = {
        {"2-D input", [&] { tg::conv2d(tg::zeros({8, 8}), w); }, "4-D"},
        {"3-D weight", [&] { tg::conv2d(x, tg::zeros({4, 3, 3})); }, "4-D"},
        {"channel mismatch", [&] { tg::conv2d(x, tg::zeros({4, 2, 3, 3})); }, "input has 3 channels but weight expects 2"},
        {"groups not dividing C", [&] { tg::conv2d(tg::zeros({2, 4, 8, 8}), tg::zeros({6, 2, 3, 3}), {}, {.groups = 3}); }, "must divide"},
        {"groups not dividing F", [&] { tg::conv2d(tg::zeros({2, 4, 8, 8}), tg::zeros({3, 2, 3, 3}), {}, {.groups = 2}); }, "must divide"},
        {"kernel larger than padded input", [&] { tg::conv2d(tg::zeros({1, 3, 2, 2}), w); }, "larger than the padded input"},
        {"dilated kernel larger than input", [&] { tg::conv2d(x, w, {}, {.dilation = 4}); }, "larger than the padded input"},
        {"zero stride", [&] { tg::conv2d(x, w, {}, {.stride = 0}); }, "stride must be positive"},
        {"zero dilation", [&] { tg::conv2d(x, w, {}, {.dilation = {1, 0}}); }, "dilation must be positive"},
        {"negative padding", [&] { tg::conv2d(x, w, {}, {.padding = -1}); }, "padding must not be negative"},
        {"zero groups", [&] { tg::conv2d(x, w, {}, {.groups = 0}); }, "groups must be positive"},
        {"bias of the wrong size", [&] { tg::conv2d(x, w, tg::zeros({3})); }, "bias must be [4]"},
        {"bias of the wrong rank", [&] { tg::conv2d(x, w, tg::zeros({1, 4})); }, "bias must be [4]"},
        {"dtype mismatch", [&] { tg::conv2d(x, w.to(tg::kFloat64)); }, "dtype"},
        {"bias dtype mismatch", [&] { tg::conv2d(x, w, b.to(tg::kFloat64)); }, "dtype"},
        {"undefined weight", [&] { tg::conv2d(x, Tensor()); }, "undefined"},
    };
    for (const Bad& bad : table) {
        CAPTURE(bad.what);
        const std::string msg = error_of(bad.call);
        CHECK(msg.rfind("conv2d: ", 0) == 0);
        CHECK(msg.find(bad.says) != std::string::npos);
    }
    // The shapes are in the message, so the user can find the layer.
    CHECK(error_of([&] { tg::conv2d(x, tg::zeros({4, 2, 3, 3})); }).find("input [2,3,8,8], weight [4,2,3,3]") != std::string::npos);
}

TEST_CASE("pooling: bad inputs are refused with a message that names the op") {
    const Tensor x = tg::zeros({2, 3, 8, 8});
    struct Bad {
        const char* what;
        std::function<void()> call;
        const char* op;
        const char* says;
    };
    const std::vector<Bad> table = {
        {"5-D input", [&] { tg::max_pool2d(tg::zeros({1, 3, 2, 8, 8}), {}); }, "max_pool2d", "4-D"},
        {"zero kernel", [&] { tg::max_pool2d(x, {.kernel_size = {0, 2}}); }, "max_pool2d", "kernel_size must be positive"},
        {"zero stride", [&] { tg::max_pool2d(x, {.kernel_size = 2, .stride = 0}); }, "max_pool2d", "stride must be positive"},
        {"negative padding", [&] { tg::max_pool2d(x, {.kernel_size = 2, .padding = -1}); }, "max_pool2d", "must not be negative"},
        {"padding over half the kernel", [&] { tg::max_pool2d(x, {.kernel_size = 2, .padding = 2}); }, "max_pool2d", "at most half"},
        {"kernel larger than input", [&] { tg::max_pool2d(tg::zeros({1, 1, 2, 9}), {.kernel_size = 3}); }, "max_pool2d", "larger than"},
        {"avg: 2-D input", [&] { tg::avg_pool2d(tg::zeros({8, 8}), {}); }, "avg_pool2d", "4-D"},
        {"avg: negative kernel", [&] { tg::avg_pool2d(x, {.kernel_size = -2}); }, "avg_pool2d", "kernel_size must be positive"},
        {"avg: padding over half", [&] { tg::avg_pool2d(x, {.kernel_size = 3, .padding = {0, 2}}); }, "avg_pool2d", "at most half"},
        {"avg: kernel larger than input", [&] { tg::avg_pool2d(tg::zeros({1, 1, 2, 2}), {.kernel_size = 3}); }, "avg_pool2d", "larger than"},
        {"adaptive: 2-D input", [&] { tg::adaptive_avg_pool2d(tg::zeros({8, 8}), 1); }, "adaptive_avg_pool2d", "4-D"},
        {"adaptive: zero output", [&] { tg::adaptive_avg_pool2d(x, {0, 1}); }, "adaptive_avg_pool2d", "output_size must be positive"},
        {"dilation 0", [&] { tg::max_pool2d(x, {.kernel_size = 2, .dilation = 0}); }, "max_pool2d", "dilation must be positive"},
        {"avg: dilation", [&] { tg::avg_pool2d(x, {.kernel_size = 2, .dilation = 2}); }, "avg_pool2d", "no dilation"},
        {"avg: divisor 0", [&] { tg::avg_pool2d(x, {.kernel_size = 2, .divisor_override = 0}); }, "avg_pool2d", "divisor_override"},
        {"max: divisor", [&] { tg::max_pool2d(x, {.kernel_size = 2, .divisor_override = 2}); }, "max_pool2d", "avg_pool2d options"},
        {"dilated kernel too big", [&] { tg::max_pool2d(x, {.kernel_size = 3, .dilation = 4}); }, "max_pool2d", "larger than"},
        // H=1, k2 p1 d2: the only window's taps are rows -1 and 1, both padding (PyTorch returns -inf).
        {"window of padding only", [&] { tg::max_pool2d(tg::zeros({1, 1, 1, 4}), {.kernel_size = 2, .padding = 1, .dilation = 2}); },
         "max_pool2d", "only padding"},
        {"no pixels", [&] { tg::max_pool2d(tg::zeros({1, 1, 0, 4}), {}); }, "max_pool2d", "no pixels"},
        {"unpool: index out of range", [&] { tg::max_unpool2d(x, tg::full({2, 3, 8, 8}, 256, {.dtype = tg::kInt64}), {}); },
         "max_unpool2d", "outside an output plane of 16x16"},
        {"unpool: negative index", [&] { tg::max_unpool2d(x, tg::full({2, 3, 8, 8}, -1, {.dtype = tg::kInt64}), {}); }, "max_unpool2d",
         "index -1"},
        {"unpool: int32 indices", [&] { tg::max_unpool2d(x, tg::zeros({2, 3, 8, 8}, {.dtype = tg::kInt32}), {}); }, "max_unpool2d", "int64"},
        {"unpool: indices shape", [&] { tg::max_unpool2d(x, tg::zeros({3, 2, 8, 8}, {.dtype = tg::kInt64}), {}); }, "max_unpool2d",
         "input's shape"},
        {"unpool: output_size too big",
         [&] { tg::max_unpool2d(x, tg::zeros({2, 3, 8, 8}, {.dtype = tg::kInt64}), {.output_size = tg::Pair{18, 16}}); }, "max_unpool2d",
         "strictly between 14 and 18"},
        {"unpool: undefined indices", [&] { tg::max_unpool2d(x, Tensor(), {}); }, "max_unpool2d", "int64"},
    };
    for (const Bad& bad : table) {
        CAPTURE(bad.what);
        const std::string msg = error_of(bad.call);
        CHECK(msg.rfind(std::string(bad.op) + ": ", 0) == 0);
        CHECK(msg.find(bad.says) != std::string::npos);
    }
}

TEST_CASE("conv2d: the output's layout is the input's; a conv-conv-pool stack in either layout matches the reference") {
    tg::Generator gen(7);
    const Tensor x0 = tg::randn({2, 3, 12, 10}, gen), w1 = tg::randn({8, 3, 3, 3}, gen), b1 = tg::randn({8}, gen);
    const Tensor w2 = tg::randn({16, 8, 3, 3}, gen), b2 = tg::randn({16}, gen), g = tg::randn({2, 16, 5, 4}, gen);
    struct Result {
        Tensor out, dx, dw1, db1, dw2, db2;
    };
    auto run = [&](bool channels_last_input) {
        std::vector<Tensor> leaves{channels_last_input ? channels_last(x0, true) : x0.detach(), w1.detach(), b1.detach(), w2.detach(),
                                   b2.detach()};
        for (Tensor& t : leaves) t.requires_grad_(true);
        Tensor h = tg::conv2d(leaves[0], leaves[1], leaves[2], {.padding = 1});
        Tensor y = tg::max_pool2d(tg::conv2d(h, leaves[3], leaves[4], {.stride = 1}), {.kernel_size = 2});
        auto grads = tg::grad({y}, leaves, {g});
        return Result{y, grads[0], grads[1], grads[2], grads[3], grads[4]};
    };
    {
        const Tensor x = channels_last(x0, false);
        const Tensor y = tg::conv2d(x, w1, b1, {.padding = 1});
        CHECK(y.is_contiguous(tg::MemoryFormat::ChannelsLast));
        CHECK_FALSE(y.is_contiguous());
        // A row-major input and weight give a row-major output, as in PyTorch.
        CHECK(tg::conv2d(x0, w1, b1).is_contiguous());
    }
    Result ref;
    {
        tg::ReferenceKernelsGuard reference;
        ref = run(false);
    }
    for (bool cl : {true, false}) {
        CAPTURE(cl);
        const Result fast = run(cl);
        // The pool kept the convolutions' layout, which is the input's.
        CHECK(fast.out.is_contiguous(cl ? tg::MemoryFormat::ChannelsLast : tg::MemoryFormat::Contiguous));
        CHECK(fast.dx.is_contiguous(cl ? tg::MemoryFormat::ChannelsLast : tg::MemoryFormat::Contiguous));
        CHECK(tg::allclose(fast.out, ref.out, 1e-4, 1e-4));
        CHECK(tg::allclose(fast.dx, ref.dx, 1e-4, 1e-4));
        CHECK(tg::allclose(fast.dw1, ref.dw1, 1e-4, 1e-3));
        CHECK(tg::allclose(fast.db1, ref.db1, 1e-4, 1e-3));
        CHECK(tg::allclose(fast.dw2, ref.dw2, 1e-4, 1e-3));
        CHECK(tg::allclose(fast.db2, ref.db2, 1e-4, 1e-3));
    }
}

TEST_CASE("conv2d: oneDNN primitives are built once per shape and reused") {
    tg::Generator gen(3);
    const Tensor x = tg::randn({2, 5, 9, 9}, gen), w = tg::randn({7, 5, 3, 3}, gen, {.requires_grad = true});
    const Tensor b = tg::randn({7}, gen, {.requires_grad = true});
    tg::conv2d(x, w, b, {.stride = 2}).sum().backward();
    const std::size_t after_first = tg::kernels::conv2d_primitive_cache_size();
    CHECK(after_first >= 2);  // forward and backward-weights at least
    for (int i = 0; i < 3; ++i) tg::conv2d(x, w, b, {.stride = 2}).sum().backward();
    CHECK(tg::kernels::conv2d_primitive_cache_size() == after_first);
    tg::conv2d(x, w, b, {.stride = 1}).sum().backward();
    CHECK(tg::kernels::conv2d_primitive_cache_size() > after_first);
}

TEST_CASE("conv2d: threads share the primitive cache safely") {
    tg::Generator gen(11);
    const Tensor x = tg::randn({4, 6, 10, 10}, gen), w = tg::randn({8, 6, 3, 3}, gen), b = tg::randn({8}, gen);
    // Each thread runs the same shapes (racing to build the same entries) and one of its own.
    auto work = [&](int64_t width, Tensor& out, Tensor& dw) {
        for (int i = 0; i < 5; ++i) {
            Tensor wi = w.detach();
            wi.requires_grad_(true);
            Tensor own = tg::conv2d(tg::zeros({2, 6, 7, width}), wi, b);
            out = tg::conv2d(x, wi, b, {.padding = 1});
            auto grads = tg::grad({out}, {wi}, {tg::ones_like(out)});
            dw = grads[0];
            CHECK(own.size(3) == width - 2);
        }
    };
    Tensor expected_out, expected_dw;
    work(5, expected_out, expected_dw);
    std::vector<Tensor> outs(4), dws(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(work, 20 + t, std::ref(outs[t]), std::ref(dws[t]));
    for (auto& t : threads) t.join();
    for (int t = 0; t < 4; ++t) {
        // Not bit-exact: oneDNN may split reductions differently when teams differ in size.
        CHECK(tg::allclose(outs[t], expected_out, 1e-5, 1e-5));
        CHECK(tg::allclose(dws[t], expected_dw, 1e-5, 1e-4));
    }
}

TEST_CASE("conv2d: weights and bias given as strided views take the im2col + GEMM passes and match the reference") {
    // 32 input channels x 3x3 and 64 filters over 12 images of 10x9: large enough for the GEMM
    // forms of all three passes on AVX2 (ops/kernels/conv_gemm.hpp), oneDNN elsewhere.
    tg::Generator gen(23);
    const Tensor x0 = tg::randn({12, 32, 10, 9}, gen), g = tg::randn({12, 64, 10, 9}, gen);
    const Tensor w_transposed = tg::randn({32, 64, 3, 3}, gen).transpose(0, 1);  // [64,32,3,3], not contiguous
    const Tensor b_strided = tg::randn({128}, gen).slice(0, 0, 128, 2);         // [64], stride 2
    auto run = [&] {
        std::vector<Tensor> leaves{channels_last(x0, true), w_transposed.detach(), b_strided.detach()};
        for (Tensor& t : leaves) t.requires_grad_(true);
        const Tensor y = tg::conv2d(leaves[0], leaves[1], leaves[2], {.padding = 1});
        std::vector<Tensor> out{y.detach()};
        for (const Tensor& t : tg::grad({y}, leaves, {g})) out.push_back(t);
        return out;
    };
    CHECK_FALSE(w_transposed.is_contiguous());
    std::vector<Tensor> ref;
    {
        tg::ReferenceKernelsGuard reference;
        ref = run();
    }
    const std::vector<Tensor> fast = run();
    const char* names[] = {"output", "dx", "dw", "db"};
    for (std::size_t i = 0; i < ref.size(); ++i) {
        CAPTURE(names[i]);
        CHECK(fast[i].shape() == ref[i].shape());
        CHECK(tg::allclose(fast[i], ref[i], 1e-4, 1e-3));
    }
}

TEST_CASE("conv2d and conv_transpose2d take one image [C,H,W] as PyTorch does: a batch of one, the batch dimension dropped") {
    tg::Generator gen(5);
    const Tensor x = tg::randn({3, 7, 6}, gen, {.dtype = tg::kFloat64, .requires_grad = true});
    const Tensor w = tg::randn({4, 3, 3, 3}, gen, {.dtype = tg::kFloat64, .requires_grad = true});
    const Tensor wt = tg::randn({3, 2, 3, 3}, gen, {.dtype = tg::kFloat64, .requires_grad = true});
    const Tensor b = tg::randn({4}, gen, {.dtype = tg::kFloat64});
    const Tensor y = tg::conv2d(x, w, b, {.stride = 2, .padding = 1});
    CHECK(y.shape() == tg::Shape{4, 4, 3});
    CHECK(tg::max_abs_diff(y, tg::conv2d(x.unsqueeze(0), w, b, {.stride = 2, .padding = 1}).squeeze(0)) == 0.0);
    const Tensor yt = tg::conv_transpose2d(x, wt, Tensor(), {.stride = 2});
    CHECK(yt.shape() == tg::Shape{2, 15, 13});
    CHECK(tg::max_abs_diff(yt, tg::conv_transpose2d(x.unsqueeze(0), wt, Tensor(), {.stride = 2}).squeeze(0)) == 0.0);
    CHECK(tg::gradcheck([](const std::vector<Tensor>& in) { return tg::conv2d(in[0], in[1], Tensor(), {.padding = 1}); }, {x, w}));
    CHECK(tg::gradcheck([](const std::vector<Tensor>& in) { return tg::conv_transpose2d(in[0], in[1]); }, {x, wt}));
    // Neither a 2-D nor a 5-D input is an image or a batch of them.
    CHECK_THROWS_WITH_AS(tg::conv2d(tg::randn({7, 6}), tg::randn({4, 1, 3, 3})), doctest::Contains("3-D [C,H,W]"), std::invalid_argument);
}
