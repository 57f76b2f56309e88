#include "ops/index.hpp"

#include <memory>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "ops/kernels/index.hpp"

namespace tapegrad {
namespace {

using Index = std::shared_ptr<const std::vector<int64_t>>;

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

Tensor row_major(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.detach().contiguous(); }

// Each is the other's backward.
Tensor put_add_shared(const Shape& shape, const Index& index, const Tensor& source);

Tensor take_shared(const Tensor& x, const Index& index, const Shape& shape) {
    const Tensor xs = row_major(x);
    Tensor out = empty(shape, {.dtype = x.dtype()});
    dispatch_all(x.dtype(), [&]<class T>() { kernels::gather_flat<T>(xs.data<T>(), index->data(), out.numel(), out.data<T>()); });
    const Shape x_shape = x.shape();
    // y[j] = x[index[j]]: dx [x's shape] = put_add(g) (the scatter-add), linear in g.
    return record("take", out, {x}, [index, x_shape](const Tensor& g, const GradMask&) {
        return std::vector<Tensor>{put_add_shared(x_shape, index, g)};
    });
}

Tensor put_add_shared(const Shape& shape, const Index& index, const Tensor& source) {
    const Tensor src = row_major(source);
    Tensor out = zeros(shape, {.dtype = source.dtype()});
    dispatch_all(source.dtype(), [&]<class T>() { kernels::scatter_add_flat<T>(src.data<T>(), index->data(), src.numel(), out.data<T>()); });
    const Shape source_shape = source.shape();
    // out[index[j]] += source[j]: dsource [source's shape] = take(g, index), linear in g.
    return record("put_add", out, {source}, [index, source_shape](const Tensor& g, const GradMask&) {
        return std::vector<Tensor>{take_shared(g, index, source_shape)};
    });
}

}  // namespace

Tensor take(const Tensor& x, const std::vector<int64_t>& index, const Shape& shape) {
    if (!x.defined()) throw std::invalid_argument("take: the input is undefined");
    check_index("take", index, x.numel(), checked_numel(shape, "take"), shape);
    return take_shared(x, std::make_shared<const std::vector<int64_t>>(index), shape);
}

Tensor put_add(const Shape& shape, const std::vector<int64_t>& index, const Tensor& source) {
    if (!source.defined()) throw std::invalid_argument("put_add: the source is undefined");
    check_index("put_add", index, checked_numel(shape, "put_add"), source.numel(), source.shape());
    return put_add_shared(shape, std::make_shared<const std::vector<int64_t>>(index), source);
}

}  // namespace tapegrad
