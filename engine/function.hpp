#pragma once
// User-defined ops, as PyTorch's torch.autograd.Function and libtorch's torch::autograd::Function:
//
//   struct Cube : tg::Function<Cube> {
//       static tg::Tensor forward(tg::FunctionCtx& ctx, const tg::Tensor& x) {
//           ctx.save_for_backward({x});
//           return x * x * x;
//       }
//       static std::vector<tg::Tensor> backward(tg::FunctionCtx& ctx, const tg::Tensor& grad_out) {
//           const tg::Tensor& x = ctx.saved()[0];
//           return {grad_out * 3.0 * x * x};
//       }
//   };
//   tg::Tensor y = Cube::apply(x);
//
// libtorch's spelling compiles as well: forward(tg::AutogradContext* ctx, ...), backward(AutogradContext*,
// tg::variable_list grad_outputs), ctx->get_saved_variables(), ctx->saved_data["k"] = value (any IValue),
// ctx->needs_input_grad(i).
//
// forward runs with grad mode off. Its Tensor arguments (and std::optional<Tensor> ones that hold a
// defined tensor) become the node's inputs, in order. It returns a Tensor, a std::vector<Tensor>, or a
// std::tuple of Tensors; apply returns the same. Float outputs are differentiable unless passed to
// mark_non_differentiable; integer ones never are.
//
// backward runs with grad mode off too (on under create_graph, when what it computes with tapegrad
// ops is recorded, so it can be differentiated again). It gets one gradient per output: a Tensor when
// declared to take one (single-output functions), else a std::vector<Tensor>. An output that received
// no gradient gets zeros, or an undefined Tensor after set_materialize_grads(false). It returns one
// gradient per forward argument, as libtorch (an undefined Tensor for each non-tensor argument; extra
// undefined ones at the end are ignored), or one per tensor argument; an undefined Tensor means none.
// needs_input_grad(i) (or [i]) says which tensor inputs want one.
//
// Several differentiable outputs: each output gets a node of its own ("name[i]") whose backward
// places its gradient into one flat buffer, the function's node (recorded on that buffer) splits it
// back into one gradient per output. The engine sums the contributions like any other gradients,
// and outputs keep their own storage and version counters.
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "engine/autograd.hpp"

namespace tapegrad {

using variable_list = std::vector<Tensor>;
using tensor_list = std::vector<Tensor>;
using Variable = Tensor;

// A value saved for backward in FunctionCtx::saved_data (libtorch's IValue, for the types a backward
// needs): None, double, int, bool, string, Tensor, and lists of tensors, ints and doubles. Each to*()
// reads one type and throws, naming the type held, for any other.
class IValue {
public:
    IValue() = default;  // None
    IValue(bool v) : value_(v) {}
    template <std::integral T>
        requires(!std::same_as<T, bool>)
    IValue(T v) : value_(static_cast<int64_t>(v)) {}
    template <std::floating_point T>
    IValue(T v) : value_(static_cast<double>(v)) {}
    IValue(const char* s) : value_(std::string(s)) {}
    IValue(std::string s) : value_(std::move(s)) {}
    IValue(Tensor t) : value_(std::move(t)) {}
    IValue(std::vector<Tensor> v) : value_(std::move(v)) {}
    template <std::integral T>
        requires(!std::same_as<T, bool>)
    IValue(const std::vector<T>& v) : value_(std::vector<int64_t>(v.begin(), v.end())) {}
    template <std::floating_point T>
    IValue(const std::vector<T>& v) : value_(std::vector<double>(v.begin(), v.end())) {}
    template <class T>
    IValue(T*) = delete;  // a pointer would otherwise become a bool

    bool isNone() const { return value_.index() == 0; }
    bool isDouble() const { return std::holds_alternative<double>(value_); }
    bool isInt() const { return std::holds_alternative<int64_t>(value_); }
    bool isBool() const { return std::holds_alternative<bool>(value_); }
    bool isString() const { return std::holds_alternative<std::string>(value_); }
    bool isTensor() const { return std::holds_alternative<Tensor>(value_); }
    bool isTensorList() const { return std::holds_alternative<std::vector<Tensor>>(value_); }
    bool isIntList() const { return std::holds_alternative<std::vector<int64_t>>(value_); }
    bool isDoubleList() const { return std::holds_alternative<std::vector<double>>(value_); }

    double toDouble() const { return get<double>("toDouble"); }
    int64_t toInt() const { return get<int64_t>("toInt"); }
    bool toBool() const { return get<bool>("toBool"); }
    const std::string& toStringRef() const { return get<std::string>("toStringRef"); }
    const Tensor& toTensor() const { return get<Tensor>("toTensor"); }
    const std::vector<Tensor>& toTensorList() const { return get<std::vector<Tensor>>("toTensorList"); }
    const std::vector<Tensor>& toTensorVector() const { return get<std::vector<Tensor>>("toTensorVector"); }
    const std::vector<int64_t>& toIntList() const { return get<std::vector<int64_t>>("toIntList"); }
    const std::vector<int64_t>& toIntVector() const { return get<std::vector<int64_t>>("toIntVector"); }
    const std::vector<double>& toDoubleList() const { return get<std::vector<double>>("toDoubleList"); }
    const std::vector<double>& toDoubleVector() const { return get<std::vector<double>>("toDoubleVector"); }

    // "Double", "Int", ..., as libtorch names them.
    std::string tagKind() const;
    // A number (double, int or bool) as a double: saved_data held doubles only before it held
    // IValues, and code that reads it as a double keeps working.
    operator double() const;  // NOLINT(google-explicit-constructor)

private:
    using Value = std::variant<std::monostate, double, int64_t, bool, std::string, Tensor, std::vector<Tensor>,
                               std::vector<int64_t>, std::vector<double>>;
    template <class T>
    const T& get(const char* accessor) const {
        if (const T* v = std::get_if<T>(&value_)) return *v;
        throw_wrong_type(accessor, kind_of<T>());
    }
    // "a Double", "an Int", ...
    template <class T>
    static std::string kind_of() {
        return kind_with_article(Value(std::in_place_type<T>).index());
    }
    static std::string kind_with_article(std::size_t index);
    [[noreturn]] void throw_wrong_type(const char* accessor, const std::string& wanted) const;
    Value value_;
};

// needs_input_grad[i] (tapegrad's spelling) and needs_input_grad(i) (libtorch's): whether the tensor
// input i wants a gradient in this backward.
class NeedsInputGrad : public GradMask {
public:
    NeedsInputGrad() = default;
    explicit NeedsInputGrad(const GradMask& mask) : GradMask(mask) {}
    bool operator()(std::size_t i) const { return (*this)[i]; }
};

class FunctionCtx;
namespace detail {
struct FunctionCall;
struct PackLayout;
struct FunctionCore;
using UserBackward = std::function<std::vector<Tensor>(FunctionCtx&, std::vector<Tensor>)>;
// Everything apply does once forward returned: checks the outputs, records the node(s), keeps what
// forward saved. Returns the outputs to hand to the caller.
std::vector<Tensor> finish_apply(FunctionCall call, std::shared_ptr<FunctionCtx> ctx, std::vector<Tensor> outputs,
                                 UserBackward backward);
}  // namespace detail

class FunctionCtx {
public:
    FunctionCtx() = default;
    FunctionCtx(const FunctionCtx&) = delete;
    FunctionCtx& operator=(const FunctionCtx&) = delete;

    // Tensors the backward needs: inputs, outputs, or anything forward made. They are kept when
    // forward returns, with the version their storage has then; backward refuses them once an
    // in-place write changed them. In a recorded backward (create_graph) they come back with their
    // history: an input attached to what made it, an output to this function's node (as PyTorch's
    // saved outputs), so a backward written with tapegrad ops has a second derivative. Saving an
    // output never makes a reference cycle.
    void save_for_backward(std::vector<Tensor> tensors) { to_save_ = std::move(tensors); }
    std::vector<Tensor> get_saved_variables() const;
    const std::vector<Tensor>& saved() const;

    // Inputs forward wrote in place and returns: they take this function's history, as after an
    // in-place op. Outputs that get no gradient (indices, masks). Both called from forward.
    void mark_dirty(const std::vector<Tensor>& inputs);
    void mark_non_differentiable(const std::vector<Tensor>& outputs);
    // False: backward gets an undefined Tensor, not zeros, for an output that received no gradient.
    void set_materialize_grads(bool value) { materialize_grads_ = value; }

    // Anything else the backward needs (a scale, an axis, a flag, a mode name). A tensor kept here
    // is kept as it is, with no version check and no history (as in libtorch): an output kept here
    // would own its own node, a cycle never freed; save tensors with save_for_backward.
    std::unordered_map<std::string, IValue> saved_data;
    // Set before backward runs.
    NeedsInputGrad needs_input_grad;

private:
    friend struct detail::FunctionCore;
    struct SavedSlot {
        SavedTensor value;
        std::optional<std::size_t> pack_output;  // which of the packed outputs it is
    };
    std::vector<Tensor> to_save_;
    std::vector<SavedSlot> saved_;
    std::shared_ptr<const detail::PackLayout> pack_;
    std::vector<Tensor> dirty_;               // from forward until apply has read them
    std::vector<Tensor> non_differentiable_;
    bool materialize_grads_ = true;
    mutable std::vector<Tensor> unpacked_;
};

using AutogradContext = FunctionCtx;

namespace detail {
struct FunctionCall {
    std::string name;
    std::vector<Tensor> inputs;              // the tensor arguments, in order
    std::vector<bool> is_tensor_argument;    // one per forward argument

    template <class A>
    void add_argument(const A& a) {
        using T = std::decay_t<A>;
        bool is_tensor = false;
        if constexpr (std::is_same_v<T, Tensor>) {
            inputs.push_back(a);
            is_tensor = true;
        } else if constexpr (std::is_same_v<T, std::optional<Tensor>>) {
            if (a.has_value() && a->defined()) {
                inputs.push_back(*a);
                is_tensor = true;
            }
        }
        is_tensor_argument.push_back(is_tensor);
    }
};

template <class T>
struct is_tensor_tuple : std::false_type {};
template <class... T>
struct is_tensor_tuple<std::tuple<T...>> : std::bool_constant<(std::is_same_v<T, Tensor> && ...)> {};

[[noreturn]] void throw_single_gradient_backward(const std::string& name, std::size_t n_outputs);
}  // namespace detail

template <class Op>
struct Function {
    template <class... Args>
    static auto apply(Args&&... args) {
        detail::FunctionCall call{op_name(), {}, {}};
        (call.add_argument(args), ...);
        auto ctx = std::make_shared<FunctionCtx>();
        using Result = std::decay_t<decltype(call_forward(*ctx, std::forward<Args>(args)...))>;
        static_assert(std::is_same_v<Result, Tensor> || std::is_same_v<Result, std::vector<Tensor>> ||
                          detail::is_tensor_tuple<Result>::value,
                      "tg::Function: forward must return a Tensor, a std::vector<Tensor> or a std::tuple of Tensors");
        Result raw;
        {
            NoGradGuard no_grad;
            raw = call_forward(*ctx, std::forward<Args>(args)...);
        }
        std::vector<Tensor> outputs = detail::finish_apply(std::move(call), std::move(ctx), to_list(std::move(raw)),
                                                           &call_backward);
        if constexpr (std::is_same_v<Result, Tensor>) return outputs[0];
        else if constexpr (std::is_same_v<Result, std::vector<Tensor>>) return outputs;
        else return to_tuple<Result>(outputs, std::make_index_sequence<std::tuple_size_v<Result>>());
    }

private:
    static std::string op_name() {
        if constexpr (requires { Op::name; }) return std::string(Op::name);
        else return "custom_function";
    }

    template <class... A>
    static decltype(auto) call_forward(FunctionCtx& ctx, A&&... a) {
        if constexpr (requires { Op::forward(&ctx, std::forward<A>(a)...); }) return Op::forward(&ctx, std::forward<A>(a)...);
        else return Op::forward(ctx, std::forward<A>(a)...);
    }

    static std::vector<Tensor> call_backward(FunctionCtx& ctx, std::vector<Tensor> grads) {
        if constexpr (requires { Op::backward(&ctx, grads); }) {
            return Op::backward(&ctx, std::move(grads));
        } else if constexpr (requires { Op::backward(ctx, grads); }) {
            return Op::backward(ctx, std::move(grads));
        } else {
            if (grads.size() != 1) detail::throw_single_gradient_backward(op_name(), grads.size());
            if constexpr (requires { Op::backward(&ctx, grads[0]); }) return Op::backward(&ctx, grads[0]);
            else if constexpr (requires { Op::backward(ctx, grads[0]); }) return Op::backward(ctx, grads[0]);
            else static_assert(!sizeof(Op*), "tg::Function: backward must take (FunctionCtx&, std::vector<Tensor>) or "
                                             "(FunctionCtx&, const Tensor&), or the same with FunctionCtx*");
        }
    }

    template <class R>
    static std::vector<Tensor> to_list(R raw) {
        if constexpr (std::is_same_v<R, Tensor>) return {std::move(raw)};
        else if constexpr (std::is_same_v<R, std::vector<Tensor>>) return raw;
        else return std::apply([](auto&... t) { return std::vector<Tensor>{t...}; }, raw);
    }
    template <class Tuple, std::size_t... I>
    static Tuple to_tuple(const std::vector<Tensor>& outputs, std::index_sequence<I...>) {
        return Tuple(outputs[I]...);
    }
};

// libtorch's torch::autograd names for custom functions (grad and backward are in engine/autograd.hpp).
namespace autograd {
using tapegrad::AutogradContext;
using tapegrad::Function;
using tapegrad::tensor_list;
using tapegrad::Variable;
using tapegrad::variable_list;
}  // namespace autograd

}  // namespace tapegrad
