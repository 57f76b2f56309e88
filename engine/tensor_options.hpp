#pragma once
// libtorch's spellings of a factory's dtype and requires_grad, next to tapegrad's designated
// initialisers ({.dtype = tg::kFloat64, .requires_grad = true}), which keep working:
//   tg::zeros({2, 3}, tg::kFloat64)                                  a dtype alone
//   tg::ones({2, 2}, tg::requires_grad())                            the chained options
//   tg::randn({2, 3}, tg::dtype(tg::kDouble).requires_grad(true))
//   tg::randn(3), tg::empty(batch.size(0))                           a one-dimensional shape as a bare size
// and libtorch's dtype names kFloat, kDouble, kLong and kInt. tg::TensorOptions stays an
// aggregate: one struct cannot have both a field `dtype` (for {.dtype = ...}) and a setter
// `dtype(...)`, so the chained form is TensorOptionsChain, which converts to it.
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "engine/tensor.hpp"

namespace tapegrad {

inline constexpr DType kFloat = kFloat32;
inline constexpr DType kDouble = kFloat64;
inline constexpr DType kLong = kInt64;
inline constexpr DType kInt = kInt32;

// libtorch's TensorOptions: each setter returns a copy with one option changed, and the same name
// without an argument reads it back.
class TensorOptionsChain {
public:
    TensorOptionsChain() = default;
    TensorOptionsChain(DType dtype) : options_{.dtype = dtype} {}  // implicit, as libtorch's TensorOptions(kDouble)
    TensorOptionsChain dtype(DType dtype) const {
        TensorOptionsChain out = *this;
        out.options_.dtype = dtype;
        return out;
    }
    TensorOptionsChain requires_grad(bool requires_grad) const {
        TensorOptionsChain out = *this;
        out.options_.requires_grad = requires_grad;
        return out;
    }
    DType dtype() const { return options_.dtype; }
    bool requires_grad() const { return options_.requires_grad; }
    operator TensorOptions() const { return options_; }

private:
    TensorOptions options_;
};

// torch::dtype(kDouble), torch::requires_grad(): options with one field set.
inline TensorOptionsChain dtype(DType dtype) { return TensorOptionsChain(dtype); }
inline TensorOptionsChain requires_grad(bool requires_grad = true) { return TensorOptionsChain().requires_grad(requires_grad); }

// A dtype alone as the options.
inline Tensor empty(const Shape& shape, DType dtype) { return empty(shape, TensorOptions{.dtype = dtype}); }
inline Tensor zeros(const Shape& shape, DType dtype) { return zeros(shape, TensorOptions{.dtype = dtype}); }
inline Tensor ones(const Shape& shape, DType dtype) { return ones(shape, TensorOptions{.dtype = dtype}); }
inline Tensor full(const Shape& shape, double value, DType dtype) { return full(shape, value, TensorOptions{.dtype = dtype}); }
inline Tensor randn(const Shape& shape, DType dtype) { return randn(shape, TensorOptions{.dtype = dtype}); }
inline Tensor rand(const Shape& shape, DType dtype) { return rand(shape, TensorOptions{.dtype = dtype}); }
inline Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype) {
    return randint(low, high, shape, TensorOptions{.dtype = dtype});
}
inline Tensor randint(int64_t high, const Shape& shape, DType dtype) { return randint(high, shape, TensorOptions{.dtype = dtype}); }
inline Tensor randperm(int64_t n, DType dtype) { return randperm(n, TensorOptions{.dtype = dtype}); }
inline Tensor arange(int64_t n, DType dtype) { return arange(n, TensorOptions{.dtype = dtype}); }
inline Tensor scalar_tensor(double value, DType dtype) { return scalar_tensor(value, TensorOptions{.dtype = dtype}); }
inline Tensor tensor(std::initializer_list<double> values, DType dtype) { return tensor(values, TensorOptions{.dtype = dtype}); }
inline Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, DType dtype) {
    return tensor(rows, TensorOptions{.dtype = dtype});
}

// A bare size for a one-dimensional shape, as libtorch's IntArrayRef takes one (tg::zeros(n) is
// tg::zeros({n})). Templates, so that a braced list ({}, {3}) still means a Shape.
template <std::integral Size, class Options = TensorOptions>
Tensor empty(Size size, Options&& options = {}) {
    return empty(Shape{static_cast<int64_t>(size)}, std::forward<Options>(options));
}
template <std::integral Size, class Options = TensorOptions>
Tensor zeros(Size size, Options&& options = {}) {
    return zeros(Shape{static_cast<int64_t>(size)}, std::forward<Options>(options));
}
template <std::integral Size, class Options = TensorOptions>
Tensor ones(Size size, Options&& options = {}) {
    return ones(Shape{static_cast<int64_t>(size)}, std::forward<Options>(options));
}
template <std::integral Size, class Options = TensorOptions>
Tensor full(Size size, double value, Options&& options = {}) {
    return full(Shape{static_cast<int64_t>(size)}, value, std::forward<Options>(options));
}
// Options may also be a Generator& (tg::randn(3, gen)).
template <std::integral Size, class Options = TensorOptions>
Tensor randn(Size size, Options&& options = {}) {
    return randn(Shape{static_cast<int64_t>(size)}, std::forward<Options>(options));
}
template <std::integral Size, class Options = TensorOptions>
Tensor rand(Size size, Options&& options = {}) {
    return rand(Shape{static_cast<int64_t>(size)}, std::forward<Options>(options));
}

}  // namespace tapegrad
