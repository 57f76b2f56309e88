// Registry rows for softmax, log_softmax and the losses.
#include "ops/activation.hpp"
#include "ops/loss.hpp"
#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {
namespace {

const std::vector<int64_t> kLabels4 = {2, 0, 4, 1};

// Tensors drawn uniformly from [low, high], one per shape (probabilities away from 0 and 1 for
// gradcheck, positive weights, positive targets for kl_div's log).
using Range = std::pair<double, double>;
std::function<std::vector<Tensor>(Generator&, DType)> uniform_inputs(std::vector<std::pair<Shape, Range>> specs) {
    return [specs](Generator& g, DType dtype) {
        std::vector<Tensor> in;
        for (const auto& [shape, range] : specs) in.push_back(uniform(shape, range.first, range.second, g, {.dtype = dtype}));
        return in;
    };
}

// Inputs: x (probabilities or logits) drawn from x_range, t in [0, 1], then constants (weight,
// pos_weight). binary_cross_entropy refuses a NaN probability, as PyTorch: refuses_nan.
OpCase binary_case(std::string name, Shape x, std::vector<Shape> constants, std::function<Tensor(const std::vector<Tensor>&)> fn,
                   Range x_range, bool refuses_nan, bool zero_size = false) {
    std::vector<std::pair<Shape, Range>> specs = {{x, x_range}, {x, {0.0, 1.0}}};
    std::vector<bool> differentiable = {true, true};
    for (const Shape& c : constants) {
        specs.push_back({c, {0.5, 2.0}});
        differentiable.push_back(false);
    }
    return {.name = std::move(name),
            .input_shapes = {},
            .fn = std::move(fn),
            .make_inputs = uniform_inputs(specs),
            .differentiable = differentiable,
            .zero_size = zero_size,
            .nan_propagates = !refuses_nan};
}

constexpr Range kProbabilities = {0.05, 0.95}, kLogits = {-4.0, 4.0};

OpCase bce_case(std::string name, Shape x, std::vector<Shape> constants, std::function<Tensor(const std::vector<Tensor>&)> fn,
                bool zero_size = false) {
    return binary_case(std::move(name), x, std::move(constants), std::move(fn), kProbabilities, true, zero_size);
}

OpCase logits_case(std::string name, Shape x, std::vector<Shape> constants, std::function<Tensor(const std::vector<Tensor>&)> fn,
                   bool zero_size = false) {
    return binary_case(std::move(name), x, std::move(constants), std::move(fn), kLogits, false, zero_size);
}

Tensor labels_of(const Shape& shape, std::vector<int64_t> values) { return from_vector(values, shape); }

// Class weights in x's dtype.
Tensor class_weights(const Tensor& x, std::vector<double> values) {
    const auto K = static_cast<int64_t>(values.size());
    return from_vector(values, {K}, {.dtype = x.dtype()});
}

// Labels 0, 1, ..., K - 1, 0, 1, ... for logits [N,K]: every class taken, at any shape.
std::vector<int64_t> every_class(const Tensor& logits) {
    std::vector<int64_t> labels(static_cast<std::size_t>(logits.size(0)));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i) % logits.size(1);
    return labels;
}

BenchShape cross_entropy_bench(int64_t n, int64_t k) {
    return {.name = "cross_entropy [" + std::to_string(n) + "," + std::to_string(k) + "]",
            .shapes = {{n, k}},
            .layout = "row-major",
            .torch = "F.cross_entropy(x[0], torch.arange(x[0].shape[0]) % x[0].shape[1])",
            .bytes_fwd = float_bytes({n, k}),
            .bytes_fwd_bwd = 3 * float_bytes({n, k})};
}

RegisterOps loss_cases({
    {.name = "softmax/last_dim", .input_shapes = {{3, 5}}, .fn = [](auto& in) { return softmax(in[0]); }},
    {.name = "softmax/middle_dim", .input_shapes = {{2, 3, 4}}, .fn = [](auto& in) { return softmax(in[0], 1); }},
    {.name = "softmax/4d_channels", .input_shapes = {{2, 3, 2, 2}}, .fn = [](auto& in) { return softmax(in[0], 1); }},
    {.name = "log_softmax/last_dim", .input_shapes = {{4, 6}}, .fn = [](auto& in) { return log_softmax(in[0]); }},
    {.name = "log_softmax/dim0", .input_shapes = {{3, 4}}, .fn = [](auto& in) { return log_softmax(in[0], 0); }},
    {.name = "cross_entropy/mean", .input_shapes = {{4, 5}}, .fn = [](auto& in) { return cross_entropy(in[0], kLabels4); }},
    // A classifier head and a wide one; bytes: read the logits, the backward writes dlogits.
    {.name = "cross_entropy/every_class",
     .input_shapes = {{7, 3}},
     .fn = [](auto& in) { return cross_entropy(in[0], every_class(in[0])); },
     .bench = {cross_entropy_bench(64, 10), cross_entropy_bench(512, 1000)}},
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

    bce_case("binary_cross_entropy/mean", {3, 4}, {}, [](auto& in) { return binary_cross_entropy(in[0], in[1]); }),
    bce_case("binary_cross_entropy/sum_weight_per_column", {3, 4}, {{4}},
             [](auto& in) { return binary_cross_entropy(in[0], in[1], {.weight = in[2], .reduction = Reduction::Sum}); }),
    bce_case("binary_cross_entropy/none_4d_weight", {2, 3, 2, 2}, {{2, 3, 2, 2}},
             [](auto& in) { return binary_cross_entropy(in[0], in[1], {.weight = in[2], .reduction = Reduction::None}); }),
    binary_case("binary_cross_entropy/of_sigmoid", {4, 3}, {}, [](auto& in) { return binary_cross_entropy(sigmoid(in[0]), in[1]); },
                {-3.0, 3.0}, true),
    // Empty rows take Sum or None: Mean of no elements is NaN, as in PyTorch.
    bce_case("binary_cross_entropy/empty", {0, 3}, {},
             [](auto& in) { return binary_cross_entropy(in[0], in[1], {.reduction = Reduction::Sum}); }, true),
    logits_case("binary_cross_entropy_with_logits/mean", {3, 4}, {},
                [](auto& in) { return binary_cross_entropy_with_logits(in[0], in[1]); }),
    logits_case("binary_cross_entropy_with_logits/weight_pos_weight_sum", {3, 4}, {{3, 1}, {4}}, [](auto& in) {
        return binary_cross_entropy_with_logits(in[0], in[1], {.weight = in[2], .pos_weight = in[3], .reduction = Reduction::Sum});
    }),
    logits_case("binary_cross_entropy_with_logits/pos_weight_none_4d", {2, 3, 2, 2}, {{3, 1, 1}}, [](auto& in) {
        return binary_cross_entropy_with_logits(in[0], in[1], {.pos_weight = in[2], .reduction = Reduction::None});
    }),
    logits_case("binary_cross_entropy_with_logits/empty", {2, 0}, {{0}},
                [](auto& in) {
                    return binary_cross_entropy_with_logits(in[0], in[1], {.pos_weight = in[2], .reduction = Reduction::None});
                }, true),

    {.name = "l1_loss/mean", .input_shapes = {{3, 4}, {3, 4}}, .fn = [](auto& in) { return l1_loss(in[0], in[1]); }},
    {.name = "l1_loss/none_4d",
     .input_shapes = {{2, 3, 2, 2}, {2, 3, 2, 2}},
     .fn = [](auto& in) { return l1_loss(in[0], in[1], Reduction::None); }},
    {.name = "l1_loss/empty",
     .input_shapes = {{0, 2}, {0, 2}},
     .fn = [](auto& in) { return l1_loss(in[0], in[1], Reduction::Sum); },
     .zero_size = true},
    {.name = "mse_loss/empty",
     .input_shapes = {{3, 0}, {3, 0}},
     .fn = [](auto& in) { return mse_loss(in[0], in[1], Reduction::None); },
     .zero_size = true},
    {.name = "smooth_l1_loss/empty",
     .input_shapes = {{0}, {0}},
     .fn = [](auto& in) { return smooth_l1_loss(in[0], in[1], {.reduction = Reduction::Sum}); },
     .zero_size = true},
    {.name = "huber_loss/empty",
     .input_shapes = {{2, 0}, {2, 0}},
     .fn = [](auto& in) { return huber_loss(in[0], in[1], {.reduction = Reduction::None}); },
     .zero_size = true},
    {.name = "kl_div/empty",
     .input_shapes = {{0, 3}, {0, 3}},
     .fn = [](auto& in) { return kl_div(in[0], in[1], {.reduction = Reduction::Sum, .log_target = true}); },
     .zero_size = true},
    // Differences scaled so that both pieces are visited.
    {.name = "smooth_l1_loss/beta0.5",
     .input_shapes = {{3, 5}, {3, 5}},
     .fn = [](auto& in) { return smooth_l1_loss(in[0], in[1], {.beta = 0.5}); }},
    {.name = "smooth_l1_loss/sum_4d",
     .input_shapes = {{2, 3, 2, 2}, {2, 3, 2, 2}},
     .fn = [](auto& in) { return smooth_l1_loss(in[0] * 2.0, in[1], {.reduction = Reduction::Sum}); }},
    {.name = "smooth_l1_loss/beta0_is_l1",
     .input_shapes = {{4}, {4}},
     .fn = [](auto& in) { return smooth_l1_loss(in[0], in[1], {.reduction = Reduction::None, .beta = 0.0}); }},
    {.name = "huber_loss/delta0.7",
     .input_shapes = {{3, 5}, {3, 5}},
     .fn = [](auto& in) { return huber_loss(in[0], in[1], {.delta = 0.7}); }},
    {.name = "huber_loss/none_4d",
     .input_shapes = {{2, 3, 2, 2}, {2, 3, 2, 2}},
     .fn = [](auto& in) { return huber_loss(in[0] * 2.0, in[1], {.reduction = Reduction::None, .delta = 1.5}); }},
    // kl_div: the input is log-probabilities (any values); a target of probabilities must be
    // positive for its derivative's log.
    {.name = "kl_div/batchmean",
     .input_shapes = {{3, 4}, {3, 4}},
     .fn = [](auto& in) { return kl_div(in[0], in[1], {.reduction = Reduction::BatchMean}); },
     .make_inputs = uniform_inputs({{{3, 4}, {-3.0, 0.0}}, {{3, 4}, {0.05, 1.0}}})},
    {.name = "kl_div/mean_4d",
     .input_shapes = {{2, 3, 2, 2}, {2, 3, 2, 2}},
     .fn = [](auto& in) { return kl_div(in[0], in[1]); },
     .make_inputs = uniform_inputs({{{2, 3, 2, 2}, {-3.0, 0.0}}, {{2, 3, 2, 2}, {0.05, 1.0}}})},
    {.name = "kl_div/log_target_sum", .input_shapes = {{3, 4}, {3, 4}},
     .fn = [](auto& in) { return kl_div(in[0], in[1], {.reduction = Reduction::Sum, .log_target = true}); }},
    {.name = "kl_div/log_target_none", .input_shapes = {{5}, {5}},
     .fn = [](auto& in) { return kl_div(in[0], in[1], {.reduction = Reduction::None, .log_target = true}); }},

    // nll_loss with a label tensor: row 0's label is 0, so that the NaN at element (0, 0) counts.
    {.name = "nll_loss/tensor_weight_ignore_mean",
     .input_shapes = {{5, 4}},
     .fn = [](auto& in) {
         return nll_loss(in[0], labels_of({5}, {0, 3, -100, 1, 3}), {.weight = class_weights(in[0], {0.5, 1.0, 1.5, 2.0})});
     }},
    {.name = "nll_loss/tensor_int32_sum",
     .input_shapes = {{4, 3}},
     .fn = [](auto& in) { return nll_loss(in[0], labels_of({4}, {0, 2, 2, 1}).to(kInt32), {.reduction = Reduction::Sum}); }},
    {.name = "nll_loss/spatial_none",
     .input_shapes = {{2, 3, 2, 2}},
     .fn = [](auto& in) {
         return nll_loss(in[0], labels_of({2, 2, 2}, {0, 1, 2, 0, 2, 2, 1, 0}), {.reduction = Reduction::None});
     }},
    {.name = "nll_loss/spatial_ignore_mean",
     .input_shapes = {{2, 3, 3}},
     .fn = [](auto& in) { return nll_loss(in[0], labels_of({2, 3}, {0, 7, 1, 2, 7, 0}), {.ignore_index = 7}); }},
    {.name = "nll_loss/unbatched",
     .input_shapes = {{4}},
     .fn = [](auto& in) { return nll_loss(in[0], labels_of({}, {0})); }},
    {.name = "nll_loss/empty_batch",
     .input_shapes = {{0, 3}},
     .fn = [](auto& in) { return nll_loss(in[0], labels_of({0}, {}), {.reduction = Reduction::Sum}); },
     .zero_size = true},

    // cross_entropy with class probabilities (the target need not sum to 1) and N-d labels.
    {.name = "cross_entropy/probabilities_mean",
     .input_shapes = {{4, 5}, {4, 5}},
     .fn = [](auto& in) { return cross_entropy(in[0], in[1]); },
     .make_inputs = uniform_inputs({{{4, 5}, {-3.0, 3.0}}, {{4, 5}, {0.0, 1.0}}})},
    {.name = "cross_entropy/probabilities_weight_smoothing_none_4d",
     .input_shapes = {{2, 3, 2, 2}, {2, 3, 2, 2}, {3}},
     .fn = [](auto& in) {
         return cross_entropy(in[0], in[1], {.reduction = Reduction::None, .weight = in[2], .label_smoothing = 0.2});
     },
     .make_inputs = uniform_inputs({{{2, 3, 2, 2}, {-3.0, 3.0}}, {{2, 3, 2, 2}, {0.0, 1.0}}, {{3}, {0.5, 2.0}}}),
     .differentiable = {true, true, false}},
    {.name = "cross_entropy/spatial_labels_weight_ignore_smoothing",
     .input_shapes = {{2, 3, 2, 2}},
     .fn = [](auto& in) {
         return cross_entropy(in[0], labels_of({2, 2, 2}, {0, 1, -100, 2, 2, 0, 1, 1}),
                              {.weight = class_weights(in[0], {0.5, 1.0, 2.0}), .label_smoothing = 0.1});
     }},
    {.name = "cross_entropy/probabilities_empty",
     .input_shapes = {{0, 3}, {0, 3}},
     .fn = [](auto& in) { return cross_entropy(in[0], in[1], {.reduction = Reduction::Sum}); },
     .zero_size = true},
});

}  // namespace
}  // namespace tapegrad::testing
