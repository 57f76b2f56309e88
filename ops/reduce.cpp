#include "ops/reduce.hpp"

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

std::vector<bool> axes_mask(const Tensor& x, const std::vector<int64_t>& axes, const char* op) {
    std::vector<bool> reduce(x.dim(), axes.empty());
    for (int64_t a : axes) {
        const std::size_t d = normalize_axis(a, x.dim(), op);
        if (reduce[d]) throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(a) + " appears twice");
        reduce[d] = true;
    }
    return reduce;
}

// The gradient of a reduction, broadcast back to the input's shape: reshape to keepdim form,
// then an expand view; scale is 1 for sum and 1/count for mean.
Tensor spread(const Tensor& g, const Shape& in_shape, const std::vector<bool>& reduce, double scale) {
    Shape kept;
    for (std::size_t d = 0; d < in_shape.size(); ++d) kept.push_back(reduce[d] ? 1 : in_shape[d]);
    Tensor gk = reshape(g, kept);
    if (scale != 1.0) gk = gk * scale;
    return expand(gk, in_shape);
}

Tensor reduce_op(const char* op, const Tensor& x, const std::vector<int64_t>& axes, bool keepdim, bool average) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    const std::vector<bool> reduce = axes_mask(x, axes, op);
    int64_t count = 1;
    for (std::size_t d = 0; d < x.dim(); ++d)
        if (reduce[d]) count *= x.shape()[d];
    if (average && count == 0)
        throw std::invalid_argument(std::string(op) + ": the mean of zero elements is undefined (input " + describe(x) + ")");
    Tensor out = sum_kernel(x, reduce, keepdim);
    const double scale = average ? 1.0 / static_cast<double>(count) : 1.0;
    if (average) {
        dispatch(out.dtype(), [&]<class T>() {
            T* p = out.data<T>();
            for (int64_t i = 0, n = out.numel(); i < n; ++i) p[i] = static_cast<T>(p[i] * scale);
        });
    }
    const Shape in_shape = x.shape();
    // d sum/dx = 1 at every element that was summed; d mean/dx = 1/count.
    return record(op, out, {x}, [in_shape, reduce, scale](const Tensor& g, const GradMask&) {
        return std::vector<Tensor>{spread(g, in_shape, reduce, scale)};
    });
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_op("sum", x, {}, false, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return reduce_op("sum", x, axes, keepdim, false); }
Tensor mean(const Tensor& x) { return reduce_op("mean", x, {}, false, true); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return reduce_op("mean", x, axes, keepdim, true); }

Tensor Tensor::sum() const { return tapegrad::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& axes, bool keepdim) const { return tapegrad::sum(*this, axes, keepdim); }
Tensor Tensor::mean() const { return tapegrad::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& axes, bool keepdim) const { return tapegrad::mean(*this, axes, keepdim); }

}  // namespace tapegrad
