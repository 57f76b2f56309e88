#include "ops/shape_ops.hpp"

#include <stdexcept>
#include <string>

#include "engine/checked_size.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/alias.hpp"
#include "ops/detail/linear_op.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

std::string str(int64_t v) { return std::to_string(v); }

void check_input(const char* op, const Tensor& x) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
    if (x.dim() == 0) throw std::invalid_argument(std::string(op) + ": the input is a scalar (0-D); it has no dimension to cut");
}

// What slice, narrow and select read of a tensor: along dimension d, `length` elements from
// `start`, every `step`; select then drops the dimension.
struct Part {
    std::size_t d;
    int64_t start, length, step = 1;
    bool drop = false;
};

// t's part p, as a view. A dimension of at most one element keeps its stride (it is never applied,
// and stride * step could overflow for a step past the end).
Tensor part_of(const Tensor& t, const Part& p, const char* op) {
    Shape shape = t.shape();
    Strides strides = t.strides();
    const int64_t offset = checked_mul(p.start, strides[p.d], op, "the offset of the first element");
    shape[p.d] = p.length;
    if (p.length > 1) strides[p.d] = checked_mul(strides[p.d], p.step, op, "the stepped stride");
    if (p.drop) {
        shape.erase(p.d);
        strides.erase(p.d);
    }
    return detail::alias(t, shape, strides, offset);
}

std::vector<SavedField> part_state(const Part& p, const Shape& input_shape) {
    return {detail::saved("dim", p.d), detail::saved("start", p.start), detail::saved("length", p.length),
            detail::saved("step", p.step), detail::saved("input_shape", to_string(input_shape))};
}

// The gradient of a part, g placed where the part is and zeros elsewhere: a linear op, whose
// adjoint reads the part again.
template <class Name>
struct PlacePart {
    static constexpr const char* name = Name::backward;
    static constexpr const char* adjoint_name = Name::value;
    static constexpr DTypes dtypes = DTypes::KeepAll;
    Part part;
    Shape input_shape;

    Tensor apply(Kernels, const Tensor& g) const {
        Tensor dx = zeros(input_shape, {.dtype = g.dtype()});
        copy_into(part_of(dx, part, Name::value), g);
        return dx;
    }
    Tensor adjoint(Kernels, const Tensor& h) const { return part_of(h, part, Name::value); }
    std::vector<SavedField> saved_state() const { return part_state(part, input_shape); }
};

// y = a part of x (a view): dx = g placed at the part, zeros elsewhere.
template <class Name>
struct PartView {
    static constexpr const char* name = Name::value;
    static constexpr detail::DerivativeDoc doc = {
        .section = "Reductions and views",
        .op = "narrow / slice / select",
        .forward = "a view: y = x[.., start : start + length], x[.., start : end : step] or x[.., i] along one dim",
        .gradient = "dx = zeros of x's shape with g written at the viewed positions",
        .shapes = "y has that dim shortened (narrow, slice) or removed (select)"};
    Part part;
    Shape input_shape{};

    Tensor forward(const OpContext&, const Tensor& x) {
        input_shape = x.shape();
        return part_of(x, part, name);
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask&) const {
        return {detail::run_linear_op(PlacePart<Name>{part, input_shape}, SourceLocation::current(), g)};
    }
    std::vector<SavedField> saved_state() const { return part_state(part, input_shape); }
};

struct SliceName {
    static constexpr const char* value = "slice";
    static constexpr const char* backward = "slice_backward";
};
struct NarrowName {
    static constexpr const char* value = "narrow";
    static constexpr const char* backward = "narrow_backward";
};
struct SelectName {
    static constexpr const char* value = "select";
    static constexpr const char* backward = "select_backward";
};

// cat, y = [x_0, x_1, ..] along d: dx_i = the part of g at x_i's position (a view of g); stack,
// the inputs along a new dimension d: dx_i = select(g, d, i).
template <bool Stack>
struct Join {
    static constexpr const char* name = Stack ? "stack" : "cat";
    static constexpr detail::DerivativeDoc doc =
        Stack ? detail::DerivativeDoc{
            .section = "Reductions and views",
            .op = "stack",
            .forward = "y = the x_i along a new dim (cat of the x_i each unsqueezed at dim)",
            .gradient = "dx_i = g.select(dim, i)",
            .shapes = "all x_i one shape; y has a new dim of size count"}
        : detail::DerivativeDoc{
            .section = "Reductions and views",
            .op = "cat",
            .forward = "y = [x_0, x_1, ..] along dim (a copy)",
            .gradient = "dx_i = the part of g at x_i's position (a view of g)",
            .shapes = "sizes agree except along dim"};
    static constexpr DTypes dtypes = DTypes::Elements;  // it only moves elements; the caller gave them one dtype
    std::size_t d;
    Shape out_shape;
    MemoryFormat format;
    std::vector<int64_t> sizes{};  // what each input takes of d

    Tensor forward(const OpContext&, const std::vector<Tensor>& tensors) {
        Tensor out = empty(out_shape, format, {.dtype = tensors[0].dtype()});
        int64_t start = 0;
        for (const Tensor& t : tensors) {
            const int64_t length = Stack ? 1 : t.shape()[d];
            copy_into(part_of(out, Part{.d = d, .start = start, .length = length, .drop = Stack}, name), t);
            sizes.push_back(length);
            start += length;
        }
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        std::vector<Tensor> grads(sizes.size());
        const auto dim = static_cast<int64_t>(d);
        int64_t start = 0;
        for (std::size_t i = 0; i < sizes.size(); start += sizes[i++])
            if (needs[i]) grads[i] = Stack ? select(g, dim, start) : narrow(g, dim, start, sizes[i]);
        return grads;
    }
    std::vector<SavedField> saved_state() const {
        return {detail::saved("dim", d), detail::saved("sizes", std::vector<double>(sizes.begin(), sizes.end()))};
    }
};

// `parts` converted to PyTorch's result type of `all` (int32 and int64 join as int64, int64 and
// float32 as float32), through the recorded .to(), so each part's gradient comes back in its own dtype.
std::vector<Tensor> in_result_type(const std::vector<Tensor>& all, const std::vector<Tensor>& parts) {
    std::vector<const Tensor*> pointers;
    for (const Tensor& t : all) pointers.push_back(&t);
    const DType common = detail::result_type(pointers);
    std::vector<Tensor> out;
    for (const Tensor& t : parts) out.push_back(t.dtype() == common ? t : t.to(common));
    return out;
}

// Checks the tensors of cat and stack (`op`) and returns the shape of their join along d. cat:
// sizes match but along d, which adds up; stack: the shapes match, and d is a new dimension.
Shape joined_shape(const char* op, const std::vector<Tensor>& tensors, std::size_t d, int64_t dim, bool stack) {
    const Tensor& first = tensors[0];
    Shape out_shape;
    for (std::size_t k = 0; k < first.dim(); ++k) {
        if (stack && k == d) out_shape.push_back(0);
        out_shape.push_back(first.shape()[k]);
    }
    if (stack && d == first.dim()) out_shape.push_back(0);
    out_shape[d] = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i];
        if (stack) {
            out_shape[d] += 1;
            continue;
        }
        bool same = t.dim() == first.dim();
        for (std::size_t k = 0; same && k < t.dim(); ++k) same = k == d || t.shape()[k] == first.shape()[k];
        if (!same)
            throw std::invalid_argument("cat: sizes must match except in dimension " + str(dim) + ", but tensor " +
                                        str(int64_t(i)) + " is " + to_string(t.shape()) + " and tensor 0 is " +
                                        to_string(first.shape()));
        out_shape[d] = checked_add(out_shape[d], t.shape()[d], "cat", "the size along the dimension joined");
    }
    checked_allocation(out_shape, first.dtype(), op);
    return out_shape;
}

// The layout of a join: channels-last when it is 4-D and every part is channels-last; stack's
// parts as cat would see them, unsqueezed at d.
MemoryFormat joined_format(const std::vector<Tensor>& tensors, std::size_t d, bool stack) {
    bool channels_last = tensors[0].dim() + (stack ? 1 : 0) == 4;
    for (std::size_t i = 0; channels_last && i < tensors.size(); ++i) {
        Tensor part = tensors[i];
        if (stack) {
            const auto [shape, strides] = detail::unsqueezed_geometry(part, d);
            part = as_strided(part, shape, strides);
        }
        channels_last = part.suggest_memory_format() == MemoryFormat::ChannelsLast;
    }
    return channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
}

// Pieces of the given sizes (checked) along d, as narrow views.
std::vector<Tensor> narrow_pieces(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim, const SourceLocation& loc) {
    std::vector<Tensor> parts;
    int64_t start = 0;
    for (int64_t s : sizes) {
        parts.push_back(narrow(x, dim, start, s, loc));
        start += s;
    }
    return parts;
}

// split's pieces of the given sizes, after checking them.
std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim, const SourceLocation& loc) {
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
    return narrow_pieces(x, split_sizes, dim, loc);
}

}  // namespace

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step, SourceLocation loc) {
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
    const Part part{.d = d, .start = start, .length = ceil_div(end - start, step), .step = step};
    return detail::run_view_op(PartView<SliceName>{.part = part}, loc, x);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length, SourceLocation loc) {
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
    return detail::run_view_op(PartView<NarrowName>{.part = {.d = d, .start = start, .length = length}}, loc, x);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index, SourceLocation loc) {
    check_input("select", x);
    const std::size_t d = normalize_axis(dim, x.dim(), "select");
    const int64_t size = x.shape()[d];
    if (index < -size || index >= size)
        throw std::invalid_argument("select: index " + str(index) + " is out of range for dimension " + str(dim) + " of size " +
                                    str(size) + " (input " + to_string(x.shape()) + ")");
    if (index < 0) index += size;
    return detail::run_view_op(PartView<SelectName>{.part = {.d = d, .start = index, .length = 1, .drop = true}}, loc, x);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim, SourceLocation loc) {
    detail::OpScope scope("split", loc);
    return split_with_sizes(x, split_sizes, dim, loc);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim, SourceLocation loc) {
    detail::OpScope scope("split", loc);
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
    return narrow_pieces(x, sizes, dim, loc);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim, SourceLocation loc) {
    detail::OpScope scope("chunk", loc);
    check_input("chunk", x);
    if (chunks <= 0) throw std::invalid_argument("chunk: the number of chunks must be positive, got " + str(chunks));
    const int64_t size = x.shape()[normalize_axis(dim, x.dim(), "chunk")];
    return split(x, ceil_div(size, chunks), dim, loc);
}

Tensor cat(const std::vector<Tensor>& given, int64_t dim, SourceLocation loc) {
    if (given.empty()) throw std::invalid_argument("cat: expects a non-empty list of tensors");
    for (std::size_t i = 0; i < given.size(); ++i) {
        if (!given[i].defined()) throw std::invalid_argument("cat: tensor " + str(int64_t(i)) + " is undefined");
        if (given[i].dim() == 0) throw std::invalid_argument("cat: tensor " + str(int64_t(i)) + " is a scalar (0-D); use stack");
    }
    // As PyTorch: a 1-D tensor of no elements joins anything (it is left out), but its dtype still counts.
    std::vector<Tensor> tensors;
    for (const Tensor& t : given)
        if (t.dim() != 1 || t.numel() != 0) tensors.push_back(t);
    if (tensors.empty()) tensors.push_back(given[0]);
    tensors = in_result_type(given, tensors);
    const std::size_t d = normalize_axis(dim, tensors[0].dim(), "cat");
    const Shape out_shape = joined_shape("cat", tensors, d, dim, false);
    return detail::run_op_list(Join<false>{.d = d, .out_shape = out_shape, .format = joined_format(tensors, d, false)}, loc, tensors);
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim, SourceLocation loc) {
    if (tensors.empty()) throw std::invalid_argument("stack: expects a non-empty list of tensors");
    if (tensors[0].defined() && tensors[0].dim() == kMaxDims)
        throw std::invalid_argument("stack: the tensors " + to_string(tensors[0].shape()) + " already have " + str(kMaxDims) +
                                    " dimensions, the most a tensor may have");
    const std::size_t d = normalize_axis(dim, tensors[0].defined() ? tensors[0].dim() + 1 : 1, "stack");
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i];
        if (!t.defined()) throw std::invalid_argument("stack: tensor " + str(int64_t(i)) + " is undefined");
        if (t.shape() != tensors[0].shape())
            throw std::invalid_argument("stack: expects tensors of one shape, but tensor " + str(int64_t(i)) + " is " +
                                        to_string(t.shape()) + " and tensor 0 is " + to_string(tensors[0].shape()));
    }
    const std::vector<Tensor> same = in_result_type(tensors, tensors);
    const Shape out_shape = joined_shape("stack", same, d, dim, true);
    return detail::run_op_list(Join<true>{.d = d, .out_shape = out_shape, .format = joined_format(same, d, true)}, loc, same);
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
