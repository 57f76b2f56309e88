// Registry rows for softmax, log_softmax and the losses.
#include "ops/loss.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

const std::vector<int64_t> kLabels4 = {2, 0, 4, 1};

RegisterOps loss_cases({
    {.name = "softmax/last_dim", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return softmax(in[0]); }},
    {.name = "softmax/middle_dim", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return softmax(in[0], 1); }},
    {.name = "softmax/4d_channels", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return softmax(in[0], 1); }},
    {.name = "log_softmax/last_dim", .input_shapes = {{4, 6}}, .fn = [](auto& in) { return log_softmax(in[0]); }},
    {.name = "log_softmax/dim0", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return log_softmax(in[0], 0); }},
    {.name = "cross_entropy/mean", .input_shapes = {{4, 5}}, .fn = [](auto& in) { return cross_entropy(in[0], kLabels4); }},
    {.name = "cross_entropy/sum",
     .input_shapes = {{4, 5}},
     .fn = [](auto& in) { return cross_entropy(in[0], kLabels4, Reduction::Sum); }},
    {.name = "cross_entropy/none",
     .input_shapes = {{4, 5}},
     .fn = [](auto& in) { return cross_entropy(in[0], kLabels4, Reduction::None); }},
    {.name = "cross_entropy/batch1",
     .input_shapes = {{1, 3}},
     .fn = [](auto& in) { return cross_entropy(in[0], {1}); }},
    {.name = "cross_entropy/transposed_logits",
     .input_shapes = {{5, 4}},
     .fn = [](auto& in) { return cross_entropy(in[0].transpose(0, 1), kLabels4); }},
    {.name = "nll_loss/of_log_softmax",
     .input_shapes = {{4, 5}},
     .fn = [](auto& in) { return nll_loss(log_softmax(in[0]), kLabels4); }},
    // Row 0's label is 2: the NaN at element (0, 0) is not selected.
    {.name = "nll_loss/none",
     .input_shapes = {{4, 5}},
     .fn = [](auto& in) { return nll_loss(in[0], kLabels4, Reduction::None); },
     .nan_propagates = false},
    {.name = "softmax/empty_axis", .input_shapes = {{3, 0}}, .fn = [](auto& in) { return softmax(in[0], 1); }, .zero_size = true},
    {.name = "log_softmax/empty_batch",
     .input_shapes = {{0, 4}},
     .fn = [](auto& in) { return log_softmax(in[0], 1); },
     .zero_size = true},
    {.name = "mse_loss/mean", .input_shapes = {{3, 4}, {3, 4}}, .fn = [](auto& in) { return mse_loss(in[0], in[1]); }},
    {.name = "mse_loss/sum_4d",
     .input_shapes = {{2, 2, 2, 3}, {2, 2, 2, 3}},
     .fn = [](auto& in) { return mse_loss(in[0], in[1], Reduction::Sum); }},
    {.name = "mse_loss/none",
     .input_shapes = {{5}, {5}},
     .fn = [](auto& in) { return mse_loss(in[0], in[1], Reduction::None); }},
});

}  // namespace
}  // namespace tapegrad::testing
