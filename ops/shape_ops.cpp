#include "ops/shape_ops.hpp"

#include <stdexcept>
#include <string>

#include "engine/checked_size.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/alias.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

void check_input(const char* op, const Tensor& x) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    if (x.dim() == 0) throw std::invalid_argument(std::string(op) + ": the input is a scalar (0-D); it has no dimension to cut");
}

// x's strides with dimension d stepped every `step`: a dimension of at most one element keeps
// its stride (it is never applied, and stride * step could overflow for a step past the end).
Strides stepped_strides(Strides strides, std::size_t d, int64_t step, int64_t new_size) {
    if (new_size > 1) strides[d] = checked_mul(strides[d], step, "slice", "the stepped stride");
    return strides;
}

// The gradient of a view that reads part of x: zeros everywhere else. `place` makes, from a
// tensor of x's shape, the view the forward made of x.
template <class Place>
Tensor scatter_into_zeros(const Tensor& g, const Shape& x_shape, Place place) {
    Tensor dx = zeros(x_shape, {.dtype = g.dtype()});
    copy_into(place(dx), g);
    return dx;
}

}  // namespace

// y = x[.., start:end:step, ..]: dx = g placed at those positions, zeros elsewhere.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
    check_input("slice", x);
    const std::size_t d = normalize_axis(dim, x.dim(), "slice");
    if (step <= 0) throw std::invalid_argument("slice: step must be positive, got " + str(step) + " (input " + to_string(x.shape()) + ")");
    const int64_t size = x.shape()[d];
    auto clamp_index = [size](int64_t i) {
        if (i < 0) i = i < -size ? 0 : i + size;
        return i > size ? size : i;
    };
    start = clamp_index(start);
    end = std::max(clamp_index(end), start);
    Shape shape = x.shape();
    shape[d] = ceil_div(end - start, step);
    const Strides strides = stepped_strides(x.strides(), d, step, shape[d]);
    const int64_t offset = start * x.strides()[d];
    const Shape from = x.shape();
    return detail::alias_with_grad(
        "slice", x, shape, strides,
        [from, d, start, end, step, shape](const Tensor& g, const GradMask&) {
            Tensor dx = scatter_into_zeros(g, from, [&](const Tensor& z) {
                return as_strided(z, shape, stepped_strides(z.strides(), d, step, shape[d]), start * z.strides()[d]);
            });
            const auto dim = static_cast<int64_t>(d);
            return std::vector<Tensor>{
                linear_backward("slice", dx, g, [dim, start, end, step](const Tensor& h) { return slice(h, dim, start, end, step); })};
        },
        offset);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
    check_input("narrow", x);
    const std::size_t d = normalize_axis(dim, x.dim(), "narrow");
    const int64_t size = x.shape()[d];
    if (start < -size || start > size)
        throw std::invalid_argument("narrow: start " + str(start) + " is out of range for dimension " + str(dim) + " of size " +
                                    str(size) + " (input " + to_string(x.shape()) + ")");
    if (start < 0) start += size;
    if (length < 0 || length > size - start)
        throw std::invalid_argument("narrow: start " + str(start) + " + length " + str(length) + " exceeds dimension " +
                                    str(dim) + " of size " + str(size) + " (input " + to_string(x.shape()) + ")");
    // The same view as slice(start, start + length), named as the user called it in errors.
    Shape shape = x.shape();
    shape[d] = length;
    const Shape from = x.shape();
    return detail::alias_with_grad(
        "narrow", x, shape, x.strides(),
        [from, d, start, shape](const Tensor& g, const GradMask&) {
            Tensor dx = scatter_into_zeros(g, from, [&](const Tensor& z) { return as_strided(z, shape, z.strides(), start * z.strides()[d]); });
            const auto dim = static_cast<int64_t>(d);
            const int64_t length = shape[d];
            return std::vector<Tensor>{
                linear_backward("narrow", dx, g, [dim, start, length](const Tensor& h) { return narrow(h, dim, start, length); })};
        },
        start * x.strides()[d]);
}

// y = x[.., index, ..]: dx = g placed at index, zeros elsewhere.
Tensor select(const Tensor& x, int64_t dim, int64_t index) {
    check_input("select", x);
    const std::size_t d = normalize_axis(dim, x.dim(), "select");
    const int64_t size = x.shape()[d];
    if (index < -size || index >= size)
        throw std::invalid_argument("select: index " + str(index) + " is out of range for dimension " + str(dim) + " of size " +
                                    str(size) + " (input " + to_string(x.shape()) + ")");
    if (index < 0) index += size;
    Shape shape = x.shape();
    Strides strides = x.strides();
    shape.erase(d);
    strides.erase(d);
    const Shape from = x.shape();
    return detail::alias_with_grad(
        "select", x, shape, strides,
        [from, d, index, shape](const Tensor& g, const GradMask&) {
            Tensor dx = scatter_into_zeros(g, from, [&](const Tensor& z) {
                Strides st = z.strides();
                const int64_t off = index * st[d];
                st.erase(d);
                return as_strided(z, shape, st, off);
            });
            const auto dim = static_cast<int64_t>(d);
            return std::vector<Tensor>{linear_backward("select", dx, g, [dim, index](const Tensor& h) { return select(h, dim, index); })};
        },
        index * x.strides()[d]);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim) {
    check_input("split", x);
    const std::size_t d = normalize_axis(dim, x.dim(), "split");
    const int64_t size = x.shape()[d];
    int64_t total = 0;
    for (int64_t s : split_sizes) {
        if (s < 0) throw std::invalid_argument("split: sizes must not be negative, got " + str(s));
        if (s > size - total)  // and so total + s, which could overflow, is never formed
            throw std::invalid_argument("split: the sizes add up to more than the " + str(size) + " of dimension " + str(dim) +
                                        " of " + to_string(x.shape()));
        total += s;
    }
    if (total != size)
        throw std::invalid_argument("split: the sizes add up to " + str(total) + " but dimension " + str(dim) + " of " +
                                    to_string(x.shape()) + " has " + str(size));
    std::vector<Tensor> parts;
    int64_t start = 0;
    for (int64_t s : split_sizes) {
        parts.push_back(narrow(x, dim, start, s));
        start += s;
    }
    return parts;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
    check_input("split", x);
    const std::size_t d = normalize_axis(dim, x.dim(), "split");
    const int64_t size = x.shape()[d];
    if (split_size <= 0 && !(split_size == 0 && size == 0))
        throw std::invalid_argument("split: split_size must be positive, got " + str(split_size));
    // Each part is a view of its own: a dimension of 2^40 cut into ones would never finish.
    if (size > 0)
        check_fits_in_memory(ceil_div(size, split_size), sizeof(Tensor) + sizeof(TensorImpl), "split",
                             "the " + str(ceil_div(size, split_size)) + " parts of " + to_string(x.shape()));
    std::vector<int64_t> sizes;
    for (int64_t start = 0; start < size; start += sizes.back()) sizes.push_back(std::min(split_size, size - start));
    if (sizes.empty()) sizes.push_back(0);
    return split(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
    check_input("chunk", x);
    if (chunks <= 0) throw std::invalid_argument("chunk: the number of chunks must be positive, got " + str(chunks));
    const int64_t size = x.shape()[normalize_axis(dim, x.dim(), "chunk")];
    return split(x, ceil_div(size, chunks), dim);
}

// y = [x_0, x_1, ..] along dim: dx_i = the part of g at x_i's position (a view of g).
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
    if (tensors.empty()) throw std::invalid_argument("cat: expects a non-empty list of tensors");
    const Tensor& first = tensors[0];
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (!tensors[i].defined()) throw std::invalid_argument("cat: tensor " + str(int64_t(i)) + " is undefined");
        if (tensors[i].dim() == 0) throw std::invalid_argument("cat: tensor " + str(int64_t(i)) + " is a scalar (0-D); use stack");
    }
    const std::size_t d = normalize_axis(dim, first.dim(), "cat");
    Shape out_shape = first.shape();
    out_shape[d] = 0;
    bool channels_last = first.dim() == 4;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i];
        if (t.dtype() != first.dtype())
            throw std::invalid_argument("cat: tensor " + str(int64_t(i)) + " is " + describe(t) + " but tensor 0 is " +
                                        describe(first) + "; convert with .to()");
        bool same = t.dim() == first.dim();
        for (std::size_t k = 0; same && k < t.dim(); ++k) same = k == d || t.shape()[k] == first.shape()[k];
        if (!same)
            throw std::invalid_argument("cat: sizes must match except in dimension " + str(dim) + ", but tensor " +
                                        str(int64_t(i)) + " is " + to_string(t.shape()) + " and tensor 0 is " +
                                        to_string(first.shape()));
        out_shape[d] = checked_add(out_shape[d], t.shape()[d], "cat", "the size along the dimension joined");
        channels_last = channels_last && t.suggest_memory_format() == MemoryFormat::ChannelsLast;
    }
    checked_allocation(out_shape, first.dtype(), "cat");
    Tensor out = empty(out_shape, channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous, {.dtype = first.dtype()});
    std::vector<int64_t> starts;
    int64_t start = 0;
    for (const Tensor& t : tensors) {
        Shape part = out.shape();
        part[d] = t.shape()[d];
        copy_into(as_strided(out, part, out.strides(), start * out.strides()[d]), t);
        starts.push_back(start);
        start += t.shape()[d];
    }
    std::vector<int64_t> sizes;
    for (const Tensor& t : tensors) sizes.push_back(t.shape()[d]);
    return record("cat", out, tensors, [starts, sizes, dim](const Tensor& g, const GradMask& needs) {
        std::vector<Tensor> grads(starts.size());
        for (std::size_t i = 0; i < starts.size(); ++i)
            if (needs[i]) grads[i] = narrow(g, dim, starts[i], sizes[i]);
        return grads;
    });
}

// stack = cat of the inputs each unsqueezed at dim; the gradient flows back through both.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
    if (tensors.empty()) throw std::invalid_argument("stack: expects a non-empty list of tensors");
    if (tensors[0].defined() && tensors[0].dim() == kMaxDims)
        throw std::invalid_argument("stack: the tensors " + to_string(tensors[0].shape()) + " already have " + str(kMaxDims) +
                                    " dimensions, the most a tensor may have");
    const auto d = static_cast<int64_t>(normalize_axis(dim, tensors[0].defined() ? tensors[0].dim() + 1 : 1, "stack"));
    std::vector<Tensor> expanded;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i];
        if (!t.defined()) throw std::invalid_argument("stack: tensor " + str(int64_t(i)) + " is undefined");
        if (t.shape() != tensors[0].shape())
            throw std::invalid_argument("stack: expects tensors of one shape, but tensor " + str(int64_t(i)) + " is " +
                                        to_string(t.shape()) + " and tensor 0 is " + to_string(tensors[0].shape()));
        expanded.push_back(unsqueeze(t, d));
    }
    return cat(expanded, d);
}

Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const { return tapegrad::narrow(*this, dim, start, length); }
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
    return tapegrad::slice(*this, dim, start, end, step);
}
Tensor Tensor::select(int64_t dim, int64_t index) const { return tapegrad::select(*this, dim, index); }
Tensor Tensor::operator[](int64_t index) const {
    if (defined() && dim() == 0)
        throw std::invalid_argument("operator[]: invalid index " + str(index) +
                                    " of a 0-dim tensor, which has no dimension to index; use item<T>() to read its value");
    return tapegrad::select(*this, 0, index);
}

}  // namespace tapegrad
