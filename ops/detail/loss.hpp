#pragma once
// What the losses share: their argument checks, the reduction, and ElementwiseLoss, the
// definition of a loss computed per element of an input and a target of one shape.
#include <array>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/dtype.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/elementwise.hpp"
#include "ops/kernels/loss_elementwise.hpp"
#include "ops/loss.hpp"

namespace tapegrad::detail {

// Throws unless the reduction is Mean, Sum or None (or BatchMean, where the loss takes it).
void check_reduction(const char* op, Reduction reduction, bool takes_batchmean = false);
// PyTorch broadcasts a target of another shape with a warning that the result is likely wrong;
// here it is refused.
void check_same_shape(const char* op, const Tensor& input, const Tensor& target);
// A constant argument (a weight): undefined, or a floating tensor of the input's dtype that does
// not require grad (PyTorch refuses those too) and broadcasts to `shape`.
void check_constant(const char* op, const char* what, const Tensor& constant, const Tensor& input, const Shape& shape);
// c's values broadcast to `shape`, dense and row-major; undefined for an undefined c.
Tensor broadcast_dense(const Tensor& c, const Shape& shape);

// Refuses an integer tensor, naming the op, as run_op does for the losses it runs.
void check_floating(const char* op, const Tensor& x, const char* what);
// The vector forms' labels: x [N,K] (`what` names it: "logits"), one label in [0, K) per row.
void check_classification(const char* op, const Tensor& x, const std::vector<int64_t>& labels, const char* what);

// Class-index targets checked against an input [N,K,d1,...] (classes along dim 1) or [K] (dim 0):
// an integer tensor (int64 or int32) of the input's shape without the class dimension, each value
// in [0, K) or ignore_index; a weight, if given, [K] of the input's dtype, not requiring grad.
struct ClassTargets {
    std::vector<int64_t> labels;  // row-major over the target's elements
    kernels::NllShape shape;      // the input as [outer, K, inner]
    int64_t class_dim;
    bool any_ignored = false;
};
ClassTargets class_targets(const char* op, const Tensor& input, const Tensor& target, const Tensor& weight,
                           int64_t ignore_index);
// [1, .., K, .., 1]: the shape of a per-class vector broadcast along class_dim of an ndim-D tensor.
Shape along_classes(std::size_t ndim, int64_t class_dim, int64_t K);

// A tensor without history holding f(v) per element of v: a derivative that is piecewise
// constant (a sign, an inside-the-band mask), whose own derivative is 0 almost everywhere.
template <class F>
Tensor constant_map(const Tensor& v, F f) {
    const Tensor d = v.detach();
    return dispatch(d.dtype(), [&]<class T>() { return kernels::map_unary<T>(d, [f](T e) { return static_cast<T>(f(e)); }); });
}

// A loss computed per element, l = w ⊙ f(x, t; p), then reduced, from its definition `Loss`:
//   name, formula                    the per-element f, df/dx and df/dt (kernels/loss_elementwise.hpp),
//                                    which the forward and the fused backward run;
//   input_derivative(gw, x, t, p)    gw ⊙ df/dx in differentiable ops: the spec;
//   target_derivative(gw, x, t, p)   gw ⊙ df/dt, likewise; a loss of x - t leaves it out (dt is
//                                    input_derivative with x and t swapped, as PyTorch computes it);
//   difference_derivative(gw, d)     instead of the two above, for a loss of d = x - t that PyTorch
//                                    computes as a composite (l1: abs(x - t)): the forward saves d
//                                    alone, so x and t may be written in place before the backward,
//                                    and dt = -dx;
//   validate(x)                      optional: a check of the input's values;
//   input_for_target_only            optional, true: df/dx does not read x (kl_div's is -t), so x is
//                                    saved only when the target needs its gradient, as PyTorch's
//                                    composite keeps it, and x may be written in place before the backward;
//   promotes                         optional, true: an input and a target of different dtypes are
//                                    computed in PyTorch's result type (float32 and float64 in
//                                    float64, an integer target with a float input in the input's
//                                    dtype), as PyTorch's mse_loss, l1_loss, smooth_l1_loss and
//                                    kl_div do; an integer result type is refused by the op's name.
// gw is the gradient of each element's loss: g (None, Sum) or g / divisor (Mean, BatchMean),
// times the weight. p is the parameter (pos_weight) or undefined.
template <class Loss>
struct ElementwiseLoss {
    static constexpr const char* name = Loss::name;
    static constexpr detail::DerivativeDoc doc = doc_of<Loss>();
    static constexpr bool promotes = requires { Loss::promotes; };
    static constexpr DTypes dtypes = promotes ? DTypes::Promote : DTypes::Floating;
    Loss loss;
    Reduction reduction = Reduction::Mean;
    Tensor weight_arg, parameter_arg;  // as the caller gave them (checked in forward)
    SavedTensor input{}, target{}, weight{}, parameter{};
    double divisor = 1;
    bool fast = false;  // the xsimd loops (float32 with the fast kernels, where the formula has them)
    static constexpr bool of_difference = requires(Loss l, Tensor a) { l.difference_derivative(a, a); };

    Tensor forward(const OpContext& ctx, const Tensor& x_in, const Tensor& t_in) {
        check_same_shape(name, x_in, t_in);
        check_constant(name, "weight", weight_arg, x_in, x_in.shape());
        check_constant(name, "pos_weight", parameter_arg, x_in, x_in.shape());
        const Tensor x = as_contiguous(x_in), t = as_contiguous(t_in);
        const Tensor w = broadcast_dense(weight_arg, x.shape()), p = broadcast_dense(parameter_arg, x.shape());
        if constexpr (requires { loss.validate(x); }) loss.validate(x);
        divisor = reduction == Reduction::Mean ? static_cast<double>(x.numel())
                  : reduction == Reduction::BatchMean && x.dim() > 0 ? static_cast<double>(x.size(0))
                                                                     : 1.0;
        fast = kernels::has_fast_loops<decltype(loss.formula)> && !is_reference(ctx.kernels) && x.dtype() == kFloat32;
        Tensor out = empty(x.shape(), {.dtype = x.dtype()});
        const double total = dispatch(x.dtype(), [&]<class T>() {
            if constexpr (kernels::has_fast_loops<decltype(loss.formula)> && std::is_same_v<T, float>)
                if (fast) return kernels::elementwise_loss_forward_fast(loss.formula, operands<T>(x, t, w, p), out.data<T>());
            return kernels::elementwise_loss_forward<T>(loss.formula, operands<T>(x, t, w, p), out.data<T>());
        });
        if (ctx.recording && of_difference) {
            const NoGradGuard no_grad;
            input = SavedTensor(x - t);
        } else if (ctx.recording) {
            if (!requires { Loss::input_for_target_only; } || t_in.requires_grad()) input = SavedTensor(x, x_in);
            target = SavedTensor(t, t_in);
            if (w.defined()) weight = SavedTensor(w, weight_arg);
            if (p.defined()) parameter = SavedTensor(p, parameter_arg);
        }
        if (reduction == Reduction::None) return out;
        return scalar_tensor(reduction == Reduction::Sum ? total : total / divisor, {.dtype = x.dtype()});
    }

    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        Tensor gw = divisor == 1.0 ? g : g / divisor;
        if (weight.defined()) gw = gw * weight.unpack();
        if constexpr (of_difference) {
            const Tensor dx = loss.difference_derivative(gw, input.unpack());
            return {needs[0] ? dx : Tensor(), needs[1] ? -dx : Tensor()};
        } else {
            const Tensor t = target.unpack(), x = input.defined() ? input.unpack() : Tensor();
            const Tensor p = parameter.defined() ? parameter.unpack() : Tensor();
            return {needs[0] ? loss.input_derivative(gw, x, t, p) : Tensor(), needs[1] ? target_derivative(gw, x, t, p) : Tensor()};
        }
    }

    std::vector<Tensor> fused_backward(Kernels, const Tensor& g_in, const GradMask& needs) const {
        if constexpr (of_difference) return backward(g_in, needs);  // two small elementwise ops already
        // x unsaved: the formula's d_input does not read it (input_for_target_only), t stands in for its buffer
        const Tensor t = target.unpack(), x = input.defined() ? input.unpack() : t, g = as_contiguous(g_in);
        const Tensor w = weight.defined() ? weight.unpack() : Tensor(), p = parameter.defined() ? parameter.unpack() : Tensor();
        Tensor dx = needs[0] ? empty(x.shape(), {.dtype = x.dtype()}) : Tensor();
        Tensor dt = needs[1] ? empty(x.shape(), {.dtype = x.dtype()}) : Tensor();
        const int64_t g_stride = reduction == Reduction::None ? 1 : 0;
        dispatch(x.dtype(), [&]<class T>() {
            T* dx_data = dx.defined() ? dx.data<T>() : nullptr;
            T* dt_data = dt.defined() ? dt.data<T>() : nullptr;
            if constexpr (kernels::has_fast_loops<decltype(loss.formula)> && std::is_same_v<T, float>)
                if (fast)
                    return kernels::elementwise_loss_backward_fast(loss.formula, operands<T>(x, t, w, p), g.data<T>(), g_stride,
                                                                   static_cast<T>(divisor), dx_data, dt_data);
            kernels::elementwise_loss_backward<T>(loss.formula, operands<T>(x, t, w, p), g.data<T>(), g_stride,
                                                  static_cast<T>(divisor), dx_data, dt_data);
        });
        return {dx, dt};
    }

private:
    Tensor target_derivative(const Tensor& gw, const Tensor& x, const Tensor& t, const Tensor& p) const {
        if constexpr (requires { loss.target_derivative(gw, x, t, p); }) return loss.target_derivative(gw, x, t, p);
        else return loss.input_derivative(gw, t, x, p);
    }

    template <class T>
    static kernels::LossOperands<T> operands(const Tensor& x, const Tensor& t, const Tensor& w, const Tensor& p) {
        return {x.data<T>(), t.data<T>(), w.defined() ? w.data<T>() : nullptr, p.defined() ? p.data<T>() : nullptr, x.numel()};
    }
};

// Runs an elementwise loss: weight and parameter (pos_weight) may be undefined.
template <class Loss>
Tensor elementwise_loss(Loss loss, const SourceLocation& loc, const Tensor& input, const Tensor& target, Reduction reduction,
                        bool takes_batchmean = false, const Tensor& weight = Tensor(), const Tensor& parameter = Tensor()) {
    check_reduction(Loss::name, reduction, takes_batchmean);
    if constexpr (ElementwiseLoss<Loss>::promotes) {
        const std::array<const Tensor*, 2> both{&input, &target};
        check_op_inputs(Loss::name, DTypes::Promote, both);
        if (!is_floating_point(result_type(both)))
            throw std::invalid_argument(std::string(Loss::name) + ": this op takes float32 or float64 tensors, got " + describe(input) +
                                        " and " + describe(target) + "; convert with .to(tg::kFloat32)");
    }
    return run_op(ElementwiseLoss<Loss>{.loss = std::move(loss), .reduction = reduction, .weight_arg = weight,
                                        .parameter_arg = parameter},
                  loc, input, target);
}

}  // namespace tapegrad::detail
