// Registry rows for batch_norm. Training rows make fresh running buffers inside the function, so
// every call (gradcheck calls it many times) sees the same state.
#include "ops/batch_norm.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

// batch_norm, or batch_norm_relu (whose reference kernels are the two ops unfused).
using BatchNormFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const BatchNormOptions&,
                               SourceLocation);

Tensor train_with_running(const Tensor& x, const Tensor& w, const Tensor& b, BatchNormFn op = batch_norm) {
    const int64_t C = x.shape()[1];
    Tensor rm = zeros({C}, {.dtype = x.dtype()}), rv = ones({C}, {.dtype = x.dtype()});
    return op(x, rm, rv, w, b, {.training = true}, SourceLocation::current());
}

// Fixed running statistics (the same for every call and dtype).
Tensor eval_mode(const Tensor& x, const Tensor& w, const Tensor& b, BatchNormFn op = batch_norm) {
    const int64_t C = x.shape()[1];
    Generator gen(7);
    Tensor rm = randn({C}, gen, {.dtype = x.dtype()}), rv = uniform({C}, 0.5, 2.0, gen, {.dtype = x.dtype()});
    return op(x, rm, rv, w, b, {.training = false}, SourceLocation::current());
}

RegisterOps batch_norm_cases({
    // Bytes: read x, write y; the backward reads g and x and writes dx.
    {.name = "batch_norm/train_4d_affine",
     .input_shapes = {{3, 2, 2, 3}, {2}, {2}},
     .fn = [](auto& in) { return train_with_running(in[0], in[1], in[2]); },
     .bench = {{.name = "batch_norm train x[32,32,32,32]",
                .shapes = {kActivation, {32}, {32}},
                .formats = {MemoryFormat::ChannelsLast},
                .layout = "channels-last",
                .torch = "F.batch_norm(x[0], torch.zeros(32), torch.ones(32), x[1], x[2], training=True)",
                .bytes_fwd = 2 * float_bytes(kActivation),
                .bytes_fwd_bwd = 5 * float_bytes(kActivation)}}},
    {.name = "batch_norm/train_4d_no_affine",
     .input_shapes = {{2, 3, 3, 2}},
     .fn = [](auto& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor()); }},
    {.name = "batch_norm/train_4d_batch1",
     .input_shapes = {{1, 3, 2, 3}, {3}, {3}},
     .fn = [](auto& in) { return train_with_running(in[0], in[1], in[2]); }},
    {.name = "batch_norm/train_2d_affine",
     .input_shapes = {{5, 3}, {3}, {3}},
     .fn = [](auto& in) { return train_with_running(in[0], in[1], in[2]); }},
    {.name = "batch_norm/train_2d_no_affine",
     .input_shapes = {{4, 2}},
     .fn = [](auto& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor()); }},
    {.name = "batch_norm/eval_4d_affine",
     .input_shapes = {{2, 3, 2, 2}, {3}, {3}},
     .fn = [](auto& in) { return eval_mode(in[0], in[1], in[2]); }},
    {.name = "batch_norm/eval_2d_no_affine",
     .input_shapes = {{3, 4}},
     .fn = [](auto& in) { return eval_mode(in[0], Tensor(), Tensor()); }},
    // Spatial 1x1: row-major and channels-last coincide.
    {.name = "batch_norm/train_4d_1x1",
     .input_shapes = {{4, 3, 1, 1}, {3}, {3}},
     .fn = [](auto& in) { return train_with_running(in[0], in[1], in[2]); }},
    {.name = "batch_norm/train_3d_affine",
     .input_shapes = {{3, 2, 5}, {2}, {2}},
     .fn = [](auto& in) { return train_with_running(in[0], in[1], in[2]); }},
    {.name = "batch_norm/eval_3d_affine",
     .input_shapes = {{2, 3, 4}, {3}, {3}},
     .fn = [](auto& in) { return eval_mode(in[0], in[1], in[2]); }},
    // The fused relu(batch_norm): fast kernels against the two ops unfused, in both layouts the
    // kernels have (planes, and channels inner for [N,C]).
    {.name = "batch_norm_relu/train_4d_affine",
     .input_shapes = {{3, 2, 2, 3}, {2}, {2}},
     .fn = [](auto& in) { return train_with_running(in[0], in[1], in[2], batch_norm_relu); }},
    {.name = "batch_norm_relu/train_2d_no_affine",
     .input_shapes = {{5, 3}},
     .fn = [](auto& in) { return train_with_running(in[0], Tensor(), Tensor(), batch_norm_relu); }},
    {.name = "batch_norm_relu/eval_4d_affine",
     .input_shapes = {{2, 3, 2, 2}, {3}, {3}},
     .fn = [](auto& in) { return eval_mode(in[0], in[1], in[2], batch_norm_relu); }},
    {.name = "batch_norm_relu/train_3d_affine",
     .input_shapes = {{3, 2, 5}, {2}, {2}},
     .fn = [](auto& in) { return train_with_running(in[0], in[1], in[2], batch_norm_relu); }},
});

}  // namespace
}  // namespace tapegrad::testing
