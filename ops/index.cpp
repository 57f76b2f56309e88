#include "ops/index.hpp"

#include <memory>
#include <stdexcept>
#include <string>

#include "engine/tensor_math.hpp"
#include "ops/detail/linear_op.hpp"
#include "ops/kernels/index.hpp"

namespace tapegrad {
namespace {

// Checks that `index` addresses `numel` elements and that there are `count` of them.
void check_index(const char* op, const std::vector<int64_t>& index, int64_t numel, int64_t count, const Shape& shape) {
    if (static_cast<int64_t>(index.size()) != count)
        throw std::invalid_argument(std::string(op) + ": " + std::to_string(index.size()) + " indices for " +
                                    std::to_string(count) + " elements (shape " + to_string(shape) + "); give one per element");
    for (std::size_t j = 0; j < index.size(); ++j)
        if (index[j] < 0 || index[j] >= numel)
            throw std::invalid_argument(std::string(op) + ": index " + std::to_string(index[j]) + " at position " +
                                        std::to_string(j) + " is out of range for " + std::to_string(numel) + " elements");
}

// y[j] = x[index[j]] (row-major flat indices): a linear op, whose adjoint is put_add, the
// scatter-add of g into zeros of x's shape; each is the other's backward.
struct Take {
    static constexpr const char* name = "take";
    static constexpr const char* adjoint_name = "put_add";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Reductions and views",
        .op = "take",
        .forward = "y[j] = x_flat[index[j]] (row-major flat indices)",
        .gradient = "dx = put_add(x's shape, index, g): g[j] added at index[j]",
        .shapes = "index has numel(y) entries; y any shape"};
    static constexpr detail::DerivativeDoc adjoint_doc = {
        .section = "Reductions and views",
        .op = "put_add",
        .forward = "y = zeros, y_flat[index[j]] += s_flat[j] (repeats add up)",
        .gradient = "ds = take(g, index, s's shape)",
        .shapes = "y any shape; s has index.size() elements"};
    static constexpr detail::DTypes dtypes = detail::DTypes::Elements;  // put_add refuses bfloat16 itself
    std::shared_ptr<const std::vector<int64_t>> index;  // shared with the adjoint
    Shape x_shape, out_shape;

    Tensor apply(Kernels, const Tensor& x) const {
        const Tensor xs = as_contiguous(x);
        Tensor out = empty(out_shape, {.dtype = x.dtype()});
        dispatch_storage(x.dtype(), [&]<class T>() { kernels::gather_flat<T>(xs.data<T>(), index->data(), out.numel(), out.data<T>()); });
        return out;
    }
    Tensor adjoint(Kernels, const Tensor& g) const {
        const Tensor gs = as_contiguous(g);
        Tensor out = zeros(x_shape, {.dtype = g.dtype()});
        dispatch_all(g.dtype(), [&]<class T>() { kernels::scatter_add_flat<T>(gs.data<T>(), index->data(), gs.numel(), out.data<T>()); });
        return out;
    }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("index", std::to_string(index->size()) + " flat indices"), detail::saved("x_shape", to_string(x_shape)),
                detail::saved("out_shape", to_string(out_shape))};
    }
};

}  // namespace

Tensor take(const Tensor& x, const std::vector<int64_t>& index, const Shape& shape, SourceLocation loc) {
    if (!x.defined()) throw std::invalid_argument("take: the input is undefined");
    check_index("take", index, x.numel(), checked_numel(shape, "take"), shape);
    const Take def{.index = std::make_shared<const std::vector<int64_t>>(index), .x_shape = x.shape(), .out_shape = shape};
    return detail::run_linear_op(def, loc, x);
}

Tensor put_add(const Shape& shape, const std::vector<int64_t>& index, const Tensor& source, SourceLocation loc) {
    if (!source.defined()) throw std::invalid_argument("put_add: the source is undefined");
    detail::check_op_inputs("put_add", detail::DTypes::KeepAll, {&source});  // every dtype but bfloat16
    check_index("put_add", index, checked_numel(shape, "put_add"), source.numel(), source.shape());
    const Take def{.index = std::make_shared<const std::vector<int64_t>>(index), .x_shape = shape, .out_shape = source.shape()};
    return detail::run_op(detail::LinearOp<Take, true>{def}, loc, source);
}

}  // namespace tapegrad
