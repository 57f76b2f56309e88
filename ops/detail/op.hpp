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
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "engine/source_location.hpp"
#include "ops/kernels/kernel_choice.hpp"

namespace tapegrad::detail {

// Which dtypes an op takes.
enum class DTypes : uint8_t {
    Floating,          // float32 or float64, every tensor input the same; integers refused, naming the op
                       // (bfloat16 is refused by every policy but Elements: arithmetic does not run on it)
    PromoteIntegers,   // as Floating, but integer inputs are computed in float32 (PyTorch's exp, sqrt, sigmoid)
    KeepIntegers,      // as Floating, but integer inputs are computed in their own dtype (PyTorch's relu, abs); bool refused
    KeepAll,           // as KeepIntegers, bool included (PyTorch's masked_fill, index_select, gather)
    Elements,          // as KeepAll, bfloat16 included: ops that only move or convert elements (views, copies, to, take)
    // PyTorch's type promotion (torch.result_type): the inputs are computed in their common dtype,
    // integers included (int64 + int32 is int64, float32 * float64 is float64); each input converts
    // through the recorded .to(), whose backward gives its gradient back in its own dtype.
    Promote,
    PromoteToFloating,  // as Promote, but an integer common dtype becomes float32 (PyTorch's true division)
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
// The same, for a public function whose own checks need defined inputs of the right dtype before
// run_op repeats these: check_op_inputs("softmax", DTypes::Floating, {&x}).
inline void check_op_inputs(const char* op, DTypes policy, std::initializer_list<const Tensor*> inputs,
                            std::size_t required = SIZE_MAX) {
    check_op_inputs(op, policy, std::span<const Tensor* const>(inputs.begin(), inputs.size()), required);
}

// How many of a definition's inputs must be defined: all, unless it declares
// `static constexpr std::size_t required_inputs`.
template <class Def>
constexpr std::size_t required_inputs() {
    if constexpr (requires { Def::required_inputs; }) return Def::required_inputs;
    else return SIZE_MAX;
}
// PyTorch's result type of the defined inputs (torch.result_type, the Python scalars aside): the
// promoted dtype of the tensors that have dimensions, unless a 0-dim tensor is of a higher category
// (floating point over integer over bool), which then takes part: int64 [3] + float64 0-dim is float64, but
// float32 [3] + float64 0-dim stays float32 and int32 [3] + int64 0-dim stays int32.
DType result_type(std::span<const Tensor* const> inputs);

// The dtype an op computes in under `policy`: PyTorch's result type (Promote, PromoteToFloating),
// else input 0's dtype; an integer one becomes float32 under PromoteIntegers and PromoteToFloating.
DType computing_dtype(DTypes policy, std::span<const Tensor* const> inputs);

// Input t as the op computes with it: converted to `dtype` (recorded, so a gradient reaches t in its
// own dtype) under Promote and PromoteToFloating, an integer converted to float32 under
// PromoteIntegers, else t itself.
Tensor computing_input(DTypes policy, DType dtype, const Tensor& t);

// A member of a definition's saved state by name, for its saved_state() (to_dot shows them):
// saved("argmax", argmax), saved("eps", eps). A SavedTensor shows its shape, dtype and bytes, a
// number or a bool its value, a string itself, a vector of doubles its length and bytes.
SavedField saved(std::string name, const SavedTensor& t);
SavedField saved(std::string name, std::string value);
SavedField saved(std::string name, const char* value);
SavedField saved(std::string name, double value);
SavedField saved(std::string name, int64_t value);
SavedField saved(std::string name, bool value);
SavedField saved(std::string name, const std::vector<double>& values);  // shown as a float64 vector
template <class Int>
    requires(std::is_integral_v<Int> && !std::is_same_v<Int, bool> && !std::is_same_v<Int, int64_t>)
SavedField saved(std::string name, Int value) {
    return saved(std::move(name), static_cast<int64_t>(value));
}

// A definition's row of docs/derivatives.md, written next to its spec:
//   static constexpr DerivativeDoc doc = {.section = "Activations (elementwise)", .op = "relu",
//       .forward = "y = max(x, 0)", .gradient = "dx = g ⊙ [y > 0]", .shapes = "same"};
// The document's rows for definitions are generated from these (test_op_registry writes them
// with TAPEGRAD_WRITE_DOCS=1 and fails while the file differs): `op` is the row's first cell, and
// a row that is new goes at the end of `section`'s table.
struct DerivativeDoc {
    const char* section = nullptr;   // the "## " heading of the table the row is in
    const char* op = nullptr;        // the op cell: "hardtanh (lo = −1, hi = 1) / relu6 (lo = 0, hi = 6)"
    const char* forward = nullptr;
    const char* gradient = nullptr;  // given the output's gradient g, per input
    const char* shapes = nullptr;
};
// The first run of each definition declares its row here, with the op's name.
void declare_derivative(const char* op, const DerivativeDoc& doc);
// (op's name, row) for every definition that has run in this process and declares one.
std::vector<std::pair<std::string, DerivativeDoc>> declared_derivatives();
// Def's row, or an empty one: what a definition that wraps another (Elementwise<Math>,
// LinearOp<Def>) passes on as its own.
template <class Def>
constexpr DerivativeDoc doc_of() {
    if constexpr (requires { Def::doc; }) return Def::doc;
    else return {};
}

// A definition as its node keeps it: OpBackward<Def> runs it, and the node's info lists its saved
// state by name (to_dot) through the definition's
//   std::vector<SavedField> saved_state() const;
// which lists every saved member, tensors and other values alike.
template <class Def>
struct DefinitionState final : SavedState {
    Def def;
    explicit DefinitionState(Def&& d) : def(std::move(d)) {}
    std::vector<SavedField> fields() const override {
        if constexpr (requires { def.saved_state(); }) return def.saved_state();
        else return {};
    }
};

// A definition without a backward is not differentiable (comparisons, any, all: their bool results
// have no gradient): the entry runs it with grad mode off and never records it.
template <class Def>
constexpr bool differentiable = requires(const Def& d, const Tensor& g, const GradMask& m) { d.backward(g, m); };

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

// Records the node of a differentiable definition's result: the node owns the definition (its
// backward and its saved state by name). A tuple result records its first element; the others
// carry no gradient.
template <class Def, class InputList, class Result>
Result record_definition(Def& def, Kernels kernels, const InputList& inputs, Result result) {
    auto state = std::make_shared<DefinitionState<Def>>(std::move(def));
    auto record_output = [&](Tensor out) {
        Tensor recorded = record(Def::name, std::move(out), inputs,
                                 OpBackward<Def>{std::shared_ptr<const Def>(state, &state->def), kernels});
        recorded.grad_fn()->info().saved_state = state;
        return recorded;
    };
    if constexpr (std::is_same_v<Result, Tensor>) return record_output(std::move(result));
    else {
        std::get<0>(result) = record_output(std::move(std::get<0>(result)));
        return result;
    }
}

// What every op does once its inputs are checked and converted: choose the kernels for `dtype`,
// run the forward and, when the op is differentiable and an input needs a gradient, record the
// node. `inputs` is an initializer_list or a vector of the converted inputs.
//
// A forward returns its output, or a tuple whose first element is the differentiable output and
// whose others are outputs without gradient (max_pool2d_with_indices's indices): the node is
// recorded on the first, and the tuple is returned.
template <class Def, class InputList, class Forward>
auto forward_and_record(Def& def, OpScope& scope, DType dtype, const InputList& inputs, Forward forward) {
    if constexpr (doc_of<Def>().gradient != nullptr) {
        [[maybe_unused]] static const bool declared = (declare_derivative(Def::name, doc_of<Def>()), true);
    }
    const bool recording = differentiable<Def> && needs_grad(inputs);
    const OpContext ctx{choose_kernels(dtype), recording, scope};
    auto result = forward(ctx);
    if constexpr (differentiable<Def>)
        if (recording) return record_definition(def, ctx.kernels, inputs, std::move(result));
    return result;
}

template <class Def, class... Inputs>
auto run_op(Def def, const SourceLocation& loc, const Inputs&... raw_inputs) {
    static_assert((std::is_same_v<Inputs, Tensor> && ...), "run_op takes the op's tensor inputs");
    std::optional<NoGradGuard> no_grad;  // a non-differentiable op's dtype conversions are not recorded either
    if constexpr (!differentiable<Def>) no_grad.emplace();
    OpScope scope(Def::name, loc);
    const std::array<const Tensor*, sizeof...(Inputs)> raw{&raw_inputs...};
    check_op_inputs(Def::name, Def::dtypes, raw, required_inputs<Def>());
    const DType dtype = computing_dtype(Def::dtypes, raw);
    auto run = [&](const auto&... inputs) {
        const std::initializer_list<Tensor> list{inputs...};
        return forward_and_record(def, scope, dtype, list, [&](const OpContext& ctx) { return def.forward(ctx, inputs...); });
    };
    if constexpr (Def::dtypes == DTypes::Floating || Def::dtypes == DTypes::KeepIntegers || Def::dtypes == DTypes::KeepAll ||
                  Def::dtypes == DTypes::Elements)
        return run(raw_inputs...);
    else return run(computing_input(Def::dtypes, dtype, raw_inputs)...);
}

// The entry for an op of any number of inputs (add_n): its forward takes them as one vector.
template <class Def>
auto run_op_list(Def def, const SourceLocation& loc, const std::vector<Tensor>& raw_inputs) {
    OpScope scope(Def::name, loc);
    std::vector<const Tensor*> raw;
    for (const Tensor& t : raw_inputs) raw.push_back(&t);
    check_op_inputs(Def::name, Def::dtypes, raw, required_inputs<Def>());
    const DType dtype = computing_dtype(Def::dtypes, raw);
    std::vector<Tensor> inputs;
    for (const Tensor& t : raw_inputs) inputs.push_back(computing_input(Def::dtypes, dtype, t));
    return forward_and_record(def, scope, dtype, inputs, [&](const OpContext& ctx) { return def.forward(ctx, inputs); });
}

}  // namespace tapegrad::detail
