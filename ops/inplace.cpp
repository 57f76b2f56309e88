#include "ops/inplace.hpp"

#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "engine/profiler.hpp"
#include "engine/tensor_math.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/compare.hpp"
#include "ops/detail/op.hpp"
#include "ops/detail/scalar.hpp"
#include "ops/dropout.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

bool records(const Tensor& self, const Tensor& other = Tensor()) {
    return is_grad_enabled() && (self.requires_grad() || other.requires_grad());
}

// Refuses, before anything is written, the in-place writes whose result or gradient would be wrong.
void check_target(const Tensor& self, const char* op, const Tensor& other = Tensor()) {
    if (!self.defined()) throw std::invalid_argument(std::string(op) + ": the tensor written in place is undefined");
    if (is_grad_enabled() && self.is_leaf() && self.requires_grad())
        throw std::invalid_argument(std::string(op) + ": a leaf tensor that requires grad (" + describe(self) +
                                    ") cannot be written in place while grad mode is on, since its gradient would no "
                                    "longer describe its value; write under NoGradGuard (as optimizers do), or work "
                                    "on a clone()");
    for (std::size_t d = 0; d < self.dim(); ++d)
        if (self.shape()[d] > 1 && self.strides()[d] == 0)
            throw std::invalid_argument(std::string(op) + ": the tensor " + describe(self) +
                                        " is expanded: several of its elements share one memory location, so an "
                                        "in-place write to it is ambiguous; call contiguous() or clone() first");
    if (records(self, other) && self.impl()->is_view)
        throw std::invalid_argument(std::string(op) + ": the tensor " + describe(self) +
                                    " is a view of another tensor and the write would be recorded for autograd, but "
                                    "the base's history cannot see a write through a view; apply the op out of place "
                                    "(y = relu(y)) or write into the base");
}

// PyTorch's canCast for tapegrad's dtypes: a floating-point result is never written into an
// integer tensor, and only a bool result into a bool tensor.
bool can_cast(DType from, DType to) { return to == kBool ? from == kBool : is_floating_point(to) || !is_floating_point(from); }

// PyTorch's "result type Float can't be cast to the desired output type Long", as a sentence.
[[noreturn]] void refuse_cast(const char* op, const Tensor& self, const std::string& operand, DType result,
                              const char* out_of_place) {
    throw std::invalid_argument(std::string(op) + ": the " + describe(self) + " tensor and " + operand + " give a " +
                                dtype_name(result) + " result, which can't be cast to the " + dtype_name(self.dtype()) +
                                " tensor written in place; use " + out_of_place + ", which returns a new " +
                                dtype_name(result) + " tensor");
}

// The step every in-place op shares: writes `result` (computed out of place) over self's elements
// and, when it was recorded, gives self its history. A result of a wider dtype (float64 written
// into float32, int64 into int32) is converted, as PyTorch computes in the common dtype and casts;
// an integer that does not fit is refused before anything is written.
Tensor& commit(Tensor& self, const Tensor& result, const char* op) {
    if (result.shape() != self.shape())
        throw std::invalid_argument(std::string(op) + ": the result has shape " + to_string(result.shape()) +
                                    " but the tensor written in place has shape " + to_string(self.shape()) +
                                    "; an in-place op cannot broadcast the tensor it writes into");
    // The history self takes must have self's dtype: the conversion goes on the tape.
    const Tensor written = result.grad_fn() && result.dtype() != self.dtype() ? result.to(self.dtype()) : result;
    copy_into(self, written, op);
    self.bump_version();
    if (written.grad_fn()) {
        self.impl()->grad_fn = written.grad_fn();
        self.impl()->requires_grad = true;
    }
    return self;
}

// self = f(self, other), the out-of-place op (named `out_of_place` in errors) recorded against
// self's history before the write.
template <class F>
Tensor& binary_inplace(Tensor& self, const Tensor& other, const char* op, const char* out_of_place, F f) {
    detail::OpScope scope(op, SourceLocation::current());
    check_target(self, op, other);
    const Tensor result = f(self);
    if (!can_cast(result.dtype(), self.dtype())) refuse_cast(op, self, "the " + describe(other) + " tensor", result.dtype(), out_of_place);
    return commit(self, result, op);
}

// The scalar of self.add_(value) and self.mul_(value). An integer tensor and a floating-point
// scalar give a float32 result, which PyTorch refuses to write back into the integer tensor.
Tensor scalar_operand(const Tensor& self, double value, const char* op, const char* out_of_place) {
    if (self.defined() && !is_floating_point(self.dtype())) refuse_cast(op, self, "a floating-point scalar", kFloat32, out_of_place);
    return scalar_tensor(value, {.dtype = self.defined() ? self.dtype() : kFloat32});
}

// The result of an in-place op's definition, computed out of place and recorded when an input
// needs grad: the op entry's last step, inside the in-place op's own profiler scope (its checks
// are check_target's).
template <class Def, class... Inputs>
Tensor recorded_result(Def def, detail::OpScope& scope, const Tensor& self, const Inputs&... inputs) {
    const std::initializer_list<Tensor> list{self, inputs...};
    return detail::forward_and_record(def, scope, self.dtype(), list,
                                      [&](const detail::OpContext& ctx) { return def.forward(ctx, self, inputs...); });
}

// self's elements all replaced by `values`: no gradient reaches the old history. `Name` names the
// in-place op (fill_, uniform_, normal_).
template <class Name>
struct Overwrite {
    static constexpr const char* name = Name::value;
    static constexpr detail::DerivativeDoc doc = Name::doc;
    static constexpr detail::DTypes dtypes = detail::DTypes::KeepAll;
    Tensor values;
    Tensor forward(const detail::OpContext&, const Tensor&) { return std::move(values); }
    std::vector<Tensor> backward(const Tensor&, const GradMask&) const { return {Tensor()}; }
};
struct FillName {
    static constexpr const char* value = "fill_";
    static constexpr detail::DerivativeDoc doc = {
        .section = "In-place ops",
        .op = "fill_ / zero_",
        .forward = "self ← v",
        .gradient = "dself_old = 0",
        .shapes = "same"};
};
// uniform_ and normal_ share their row: both overwrite self with draws.
constexpr detail::DerivativeDoc kRandomFillDoc = {
    .section = "In-place ops",
    .op = "uniform_ / normal_",
    .forward = "self ← draws from U[from, to) or N(mean, std²), the values uniform() / randn() give from the same "
               "generator",
    .gradient = "dself_old = 0",
    .shapes = "same; floating-point self"};
struct UniformName {
    static constexpr const char* value = "uniform_";
    static constexpr detail::DerivativeDoc doc = kRandomFillDoc;
};
struct NormalName {
    static constexpr const char* value = "normal_";
    static constexpr detail::DerivativeDoc doc = kRandomFillDoc;
};

// Replaces every element of self (already checked) with `values`, of self's shape and dtype.
template <class Name>
Tensor& overwrite(Tensor& self, detail::OpScope& scope, const Tensor& values) {
    if (!records(self)) {
        copy_into(self, values, Name::value);
        self.bump_version();
        return self;
    }
    return commit(self, recorded_result(Overwrite<Name>{values}, scope, self), Name::value);
}

// dst = src broadcast (`values`, a view of src) and converted to dst's dtype: dsrc = g converted
// back (the engine sums the broadcast dimensions); the old contents of dst get nothing.
struct Copy {
    static constexpr const char* name = "copy_";
    static constexpr detail::DerivativeDoc doc = {
        .section = "In-place ops",
        .op = "copy_",
        .forward = "self ← other (broadcast, converted to self's dtype)",
        .gradient = "dself_old = 0, dother = g summed to other's shape, converted to its dtype",
        .shapes = "other broadcasts to self"};
    static constexpr detail::DTypes dtypes = detail::DTypes::KeepAll;
    Tensor values;
    DType src_dtype = kFloat32;
    Tensor forward(const detail::OpContext&, const Tensor& self, const Tensor& src) {
        Tensor out = empty(self.shape(), {.dtype = self.dtype()});
        copy_into(out, values, "copy_");
        values = Tensor();  // the node keeps no view of src
        src_dtype = src.dtype();
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        return {Tensor(), needs[1] ? g.to(src_dtype) : Tensor()};
    }
};

// Refuses, before anything is drawn, a random fill of a tensor that cannot hold the values.
void check_random_target(const Tensor& self, const char* op) {
    check_target(self, op);
    if (!is_floating_point(self.dtype()))
        throw std::invalid_argument(std::string(op) + ": draws floating-point values, but the tensor " + describe(self) +
                                    " is an integer tensor; fill a float32 or float64 tensor");
}

}  // namespace

Tensor& Tensor::fill_(double value) {
    detail::OpScope scope("fill_", SourceLocation::current());
    check_target(*this, "fill_");
    if (!records(*this)) {
        fill_tensor(*this, value, "fill_");
        bump_version();
        return *this;
    }
    return overwrite<FillName>(*this, scope, full(shape(), value, {.dtype = dtype()}));
}

Tensor& Tensor::uniform_(double from, double to, Generator& gen) {
    detail::OpScope scope("uniform_", SourceLocation::current());
    check_random_target(*this, "uniform_");
    if (!(from <= to))
        throw std::invalid_argument("uniform_: from (" + std::to_string(from) + ") must not exceed to (" + std::to_string(to) +
                                    "); swap them");
    return overwrite<UniformName>(*this, scope, uniform(shape(), from, to, gen, {.dtype = dtype()}));
}

Tensor& Tensor::normal_(double mean, double std, Generator& gen) {
    detail::OpScope scope("normal_", SourceLocation::current());
    check_random_target(*this, "normal_");
    if (!(std >= 0.0))
        throw std::invalid_argument("normal_: std must be at least 0, got " + std::to_string(std) + "; pass the standard deviation");
    return overwrite<NormalName>(*this, scope, randn(shape(), gen, {.dtype = dtype()}) * std + mean);
}

Tensor& Tensor::copy_(const Tensor& src) {
    detail::OpScope scope("copy_", SourceLocation::current());
    check_target(*this, "copy_", src);
    if (!src.defined()) throw std::invalid_argument("copy_: the source is undefined");
    const Tensor values = tapegrad::expand(src.detach(), shape());  // checks that src broadcasts to this shape
    if (!records(*this, src)) {
        // A source that shares this storage is read completely before anything is written.
        copy_into(*this, values.impl()->storage == impl()->storage ? values.clone() : values, "copy_");
        bump_version();
        return *this;
    }
    return commit(*this, recorded_result(Copy{.values = values}, scope, *this, src), "copy_");
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
    return binary_inplace(*this, other, "add_", "add(x, other, alpha)", [&](const Tensor& self) { return tapegrad::add(self, other, alpha); });
}
Tensor& Tensor::add_(double value) { return add_(scalar_operand(*this, value, "add_", "x + value")); }
Tensor& Tensor::sub_(const Tensor& other) {
    return binary_inplace(*this, other, "sub_", "x - other", [&](const Tensor& self) { return tapegrad::sub(self, other); });
}
Tensor& Tensor::mul_(const Tensor& other) {
    return binary_inplace(*this, other, "mul_", "x * other", [&](const Tensor& self) {
        // mul saves self for other's gradient; the write below would change it, so it keeps a copy.
        return tapegrad::mul(records(self, other) && other.requires_grad() ? self.clone() : self, other);
    });
}
Tensor& Tensor::sub_(double value) { return sub_(scalar_operand(*this, value, "sub_", "x - value")); }
Tensor& Tensor::mul_(double value) { return mul_(scalar_operand(*this, value, "mul_", "x * value")); }
Tensor& Tensor::add_(IntegerScalar value) { return add_(detail::scalar_for(value, *this)); }
Tensor& Tensor::sub_(IntegerScalar value) { return sub_(detail::scalar_for(value, *this)); }
Tensor& Tensor::mul_(IntegerScalar value) { return mul_(detail::scalar_for(value, *this)); }
Tensor& Tensor::div_(const Tensor& other) {
    return binary_inplace(*this, other, "div_", "x / other", [&](const Tensor& self) {
        return tapegrad::div(records(self, other) && other.requires_grad() ? self.clone() : self, other);
    });
}
// Integer tensors are refused by div_ itself: true division gives float32.
Tensor& Tensor::div_(double value) {
    return div_(scalar_tensor(value, {.dtype = defined() && is_floating_point(dtype()) ? dtype() : kFloat32}));
}
Tensor& Tensor::relu_() {
    detail::OpScope scope("relu_", SourceLocation::current());
    check_target(*this, "relu_");
    return commit(*this, tapegrad::relu(*this), "relu_");
}

Tensor& Tensor::masked_fill_(const Tensor& mask, double value) {
    detail::OpScope scope("masked_fill_", SourceLocation::current());
    check_target(*this, "masked_fill_", mask);
    return commit(*this, masked_fill(*this, mask, value), "masked_fill_");
}

Tensor& Tensor::bernoulli_(double p, Generator& gen) {
    detail::OpScope scope("bernoulli_", SourceLocation::current());
    check_target(*this, "bernoulli_");
    return commit(*this, bernoulli(*this, p, gen), "bernoulli_");
}
Tensor& Tensor::bernoulli_(double p) { return bernoulli_(p, default_generator()); }

Tensor relu_(const Tensor& x) {
    Tensor self = x;
    self.relu_();
    return self;
}

Tensor& Tensor::uniform_(double from, double to) { return uniform_(from, to, default_generator()); }
Tensor& Tensor::normal_(double mean, double std) { return normal_(mean, std, default_generator()); }

namespace {

// self = f(self) for the unary maths (exp_, clamp_, ...), recorded against self's history. The op
// may save its input for its backward, which the write would change, so it is given a copy then.
// A result self's dtype cannot hold (exp of an int64 tensor is float32) is refused, as PyTorch
// refuses it, before anything is written.
template <class F>
Tensor& unary_inplace(Tensor& self, const char* op, const char* out_of_place, F f) {
    detail::OpScope scope(op, SourceLocation::current());
    check_target(self, op);
    const Tensor result = f(records(self) ? self.clone() : self);
    if (!can_cast(result.dtype(), self.dtype()))
        throw std::invalid_argument(std::string(op) + ": " + out_of_place + " of the " + describe(self) + " tensor is " +
                                    dtype_name(result.dtype()) + ", which can't be written into it; use " + out_of_place +
                                    ", which returns a new tensor, or convert first (.to(tg::kFloat32))");
    return commit(self, result, op);
}

}  // namespace

Tensor& Tensor::neg_() { return unary_inplace(*this, "neg_", "neg(x)", [](const Tensor& x) { return tapegrad::neg(x); }); }
Tensor& Tensor::abs_() { return unary_inplace(*this, "abs_", "abs(x)", [](const Tensor& x) { return tapegrad::abs(x); }); }
Tensor& Tensor::exp_() { return unary_inplace(*this, "exp_", "exp(x)", [](const Tensor& x) { return tapegrad::exp(x); }); }
Tensor& Tensor::log_() { return unary_inplace(*this, "log_", "log(x)", [](const Tensor& x) { return tapegrad::log(x); }); }
Tensor& Tensor::sqrt_() { return unary_inplace(*this, "sqrt_", "sqrt(x)", [](const Tensor& x) { return tapegrad::sqrt(x); }); }
Tensor& Tensor::sigmoid_() {
    return unary_inplace(*this, "sigmoid_", "sigmoid(x)", [](const Tensor& x) { return tapegrad::sigmoid(x); });
}
Tensor& Tensor::tanh_() { return unary_inplace(*this, "tanh_", "tanh(x)", [](const Tensor& x) { return tapegrad::tanh(x); }); }
Tensor& Tensor::pow_(double exponent) {
    return unary_inplace(*this, "pow_", "pow(x, exponent)", [&](const Tensor& x) { return tapegrad::pow(x, exponent); });
}
Tensor& Tensor::clamp_(std::optional<double> min, std::optional<double> max) {
    return unary_inplace(*this, "clamp_", "clamp(x, min, max)", [&](const Tensor& x) { return tapegrad::clamp(x, min, max); });
}
Tensor& Tensor::clamp_min_(double min) { return clamp_(min, std::nullopt); }
Tensor& Tensor::clamp_max_(double max) { return clamp_(std::nullopt, max); }

}  // namespace tapegrad
