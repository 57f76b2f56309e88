#pragma once
// The op entry. An op is one definition, a struct:
//
//   struct Relu {
//       static constexpr const char* name = "relu";         // the public name; its node is ReluBackward0
//       static constexpr DTypes dtypes = DTypes::Floating;  // what integer inputs get
//       SavedTensor result;                                  // saved state: named members
//       Tensor forward(const OpContext& ctx, const Tensor& x);             // fills the saved state
//       std::vector<Tensor> backward(const Tensor& g, const GradMask&) const;  // the derivative, in
//                                                            // differentiable ops: the spec
//       std::vector<Tensor> fused_backward(Kernels, const Tensor& g, const GradMask&) const;  // optional
//   };
//   Tensor relu(const Tensor& x, SourceLocation loc) { return detail::run_op(Relu{}, loc, x); }
//
// run_op does for every op what each op used to do by hand: the defined-input check, the dtype
// policy, the profiler scope with the caller's source location (so anomaly mode and the profiler
// see every op), the kernel choice, needs_grad, and recording a node whose function is the
// definition itself (OpBackward<Relu>: a debugger and a stack trace name the op).
//
// The backward that runs: the spec whenever the backward is itself recorded (create_graph), so
// second derivatives always come from the one formula; otherwise the fused kernel backward if the
// definition has one (the registry checks that the two agree), else the spec.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "engine/source_location.hpp"
#include "ops/kernels/kernel_choice.hpp"

namespace tapegrad::detail {

// Which dtypes an op takes.
enum class DTypes : uint8_t {
    Floating,          // float32 or float64, every tensor input the same; integers refused, naming the op
    PromoteIntegers,   // as Floating, but integer inputs are computed in float32 (PyTorch's exp, sqrt, sigmoid)
    KeepIntegers,      // as Floating, but integer inputs are computed in their own dtype (PyTorch's relu, abs)
};

// What the entry hands a definition's forward.
struct OpContext {
    Kernels kernels;  // chosen once from the dtype and the flags; the node keeps it for its backward
    bool recording;   // the output gets a node: save what the backward needs
    OpScope& scope;   // for the forward's FLOP count while profiling
};

// Checks the inputs for run_op; throws std::invalid_argument naming the op. Inputs from index
// `required` on are optional (a bias): they may be undefined.
void check_op_inputs(const char* op, DTypes policy, std::span<const Tensor* const> inputs,
                     std::size_t required = SIZE_MAX);

// How many of a definition's inputs must be defined: all, unless it declares
// `static constexpr std::size_t required_inputs`.
template <class Def>
constexpr std::size_t required_inputs() {
    if constexpr (requires { Def::required_inputs; }) return Def::required_inputs;
    else return SIZE_MAX;
}
// An integer input of a PromoteIntegers op, converted to float32 (others returned as they are).
Tensor promote_integer(const Tensor& t);

template <class... Inputs>
DType first_dtype(const Tensor& first, const Inputs&...) {
    return first.dtype();
}

// The node's function: a named type per op, owning the definition and its saved state.
template <class Def>
struct OpBackward {
    std::shared_ptr<const Def> def;
    Kernels kernels;

    std::vector<Tensor> operator()(const Tensor& grad, const GradMask& needs) const {
        if constexpr (requires { def->fused_backward(kernels, grad, needs); })
            if (!is_grad_enabled()) return def->fused_backward(kernels, grad, needs);
        return def->backward(grad, needs);
    }
};

template <class Def, class... Inputs>
Tensor run_op(Def def, const SourceLocation& loc, const Inputs&... raw_inputs) {
    static_assert((std::is_same_v<Inputs, Tensor> && ...), "run_op takes the op's tensor inputs");
    OpScope scope(Def::name, loc);
    check_op_inputs(Def::name, Def::dtypes, std::array<const Tensor*, sizeof...(Inputs)>{&raw_inputs...},
                    required_inputs<Def>());
    auto run = [&](const auto&... inputs) {
        const bool recording = needs_grad({inputs...});
        const OpContext ctx{choose_kernels(first_dtype(inputs...)), recording, scope};
        Tensor out = def.forward(ctx, inputs...);
        if (!recording) return out;
        return record(Def::name, std::move(out), {inputs...},
                      OpBackward<Def>{std::make_shared<const Def>(std::move(def)), ctx.kernels});
    };
    if constexpr (Def::dtypes == DTypes::PromoteIntegers) return run(promote_integer(raw_inputs)...);
    else return run(raw_inputs...);
}

}  // namespace tapegrad::detail
