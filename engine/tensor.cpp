#include "engine/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/checked_size.hpp"
#include "engine/convert.hpp"
#include "engine/generator.hpp"
#include "engine/storage.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad {

// ---------------------------------------------------------------- storage

namespace {
decltype(Storage::buffer) make_buffer(DType dtype, std::size_t count) {
    return dispatch_storage(dtype, [&]<class T>() { return decltype(Storage::buffer)(Storage::Buffer<T>(count)); });
}
}  // namespace

Storage::Storage(DType dtype, std::size_t count) : buffer(make_buffer(dtype, count)) {}

void* Storage::data() {
    return std::visit([](auto& b) -> void* { return b.data(); }, buffer);
}

std::size_t Storage::count() const {
    return std::visit([](const auto& b) { return b.size(); }, buffer);
}

// ---------------------------------------------------------------- basics

namespace {
Tensor make_tensor(const Shape& shape, const Strides& strides, DType dtype, int64_t storage_elems) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(dtype, static_cast<std::size_t>(storage_elems));
    impl->data = impl->storage->data();
    impl->shape = shape;
    impl->strides = strides;
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}
}  // namespace

const TensorImpl& Tensor::checked() const {
    if (!impl_) throw std::invalid_argument("tensor: this tensor is undefined (default-constructed or a missing gradient)");
    return *impl_;
}

int64_t Tensor::size(int64_t axis) const { return shape()[normalize_axis(axis, dim(), "size")]; }

bool Tensor::is_contiguous(MemoryFormat format) const {
    const Shape& s = shape();
    const Strides& st = strides();
    if (format == MemoryFormat::ChannelsLast) {
        if (s.size() != 4) return false;
        const Strides want = channels_last_strides(s);
        for (std::size_t i = 0; i < 4; ++i)
            if (s[i] != 1 && st[i] != want[i]) return false;
        return true;
    }
    if (numel() == 0) return true;  // as PyTorch: an empty tensor is row-major whatever its strides
    const Strides want = contiguous_strides(s);
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] != 1 && st[i] != want[i]) return false;
    return true;
}

namespace {
// PyTorch's is_channels_last_strides_2d_s4 (c10/core/MemoryFormat.h): the strides grow in C, W, H,
// N order. Ambiguous cases fall back to row-major, as there: a zero channel stride, an empty
// dimension, and N111-like tensors whose batch stride equals the channel stride. A size-1
// dimension does not multiply the next minimum, which tells [N,1,H,1] channels-last ([H,1,1,1])
// from row-major ([H,H,1,1]).
bool has_channels_last_strides(const Shape& s, const Strides& st) {
    if (s.size() != 4 || st[1] == 0) return false;
    int64_t min = 0;
    for (const std::size_t d : {1, 3, 2, 0}) {
        if (s[d] == 0 || st[d] < min) return false;
        if (d == 0 && min == st[1]) return false;
        min = s[d] > 1 ? st[d] * s[d] : st[d];
    }
    return true;
}
}  // namespace

Tensor Tensor::to(MemoryFormat format) const { return contiguous(format); }

MemoryFormat Tensor::suggest_memory_format() const {
    return has_channels_last_strides(shape(), strides()) ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
}

template <class T>
T* Tensor::data() const {
    const TensorImpl& t = checked();
    if (t.dtype != dtype_of<T>())
        throw std::invalid_argument(std::string("data: the tensor is ") + dtype_name(t.dtype) + " but " +
                                    dtype_name(dtype_of<T>()) + " was asked for; convert with .to()");
    return static_cast<T*>(t.data);
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;
template int32_t* Tensor::data<int32_t>() const;
template bool* Tensor::data<bool>() const;
template BFloat16* Tensor::data<BFloat16>() const;

template <class T>
T Tensor::at(std::initializer_list<int64_t> index) const {
    const TensorImpl& t = checked();
    if (index.size() != t.shape.size())
        throw std::invalid_argument("at: " + std::to_string(index.size()) + " indices for a tensor of shape " +
                                    to_string(t.shape));
    int64_t offset = 0;
    std::size_t d = 0;
    for (int64_t i : index) {
        if (i < 0 || i >= t.shape[d])
            throw std::invalid_argument("at: index " + std::to_string(i) + " out of range for dimension " +
                                        std::to_string(d) + " of shape " + to_string(t.shape));
        offset += i * t.strides[d++];
    }
    return dispatch_storage(t.dtype, [&]<class S>() { return checked_cast<T>(static_cast<const S*>(t.data)[offset], "at"); });
}

template <class T>
T Tensor::item() const {
    if (numel() != 1)
        throw std::invalid_argument("item: only a one-element tensor converts to a number, this one has shape " +
                                    to_string(shape()));
    return dispatch_storage(dtype(), [&]<class S>() { return checked_cast<T>(*static_cast<const S*>(data_ptr()), "item"); });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
    Tensor dense = empty(shape(), {.dtype = dtype_of<T>()});
    copy_into(dense, *this, "to_vector");
    const T* p = dense.data<T>();
    return std::vector<T>(p, p + numel());
}
#define TAPEGRAD_ELEMENT_ACCESS(T)                                       \
    template T Tensor::at<T>(std::initializer_list<int64_t>) const;     \
    template T Tensor::item<T>() const;                                 \
    template std::vector<T> Tensor::to_vector<T>() const;
TAPEGRAD_ELEMENT_ACCESS(float)
TAPEGRAD_ELEMENT_ACCESS(double)
TAPEGRAD_ELEMENT_ACCESS(int64_t)
TAPEGRAD_ELEMENT_ACCESS(int32_t)
TAPEGRAD_ELEMENT_ACCESS(bool)
TAPEGRAD_ELEMENT_ACCESS(BFloat16)
#undef TAPEGRAD_ELEMENT_ACCESS

// ---------------------------------------------------------------- autograd accessors

Tensor& Tensor::requires_grad_(bool enabled) {
    const TensorImpl& t = checked();
    if (t.grad_fn)
        throw std::invalid_argument("requires_grad_: only leaf tensors can change requires_grad; this one was made by '" +
                                    t.grad_fn->name() + "'. Use detach() to get a leaf");
    if (enabled && !is_floating_point(t.dtype))
        throw std::invalid_argument(std::string("requires_grad_: only floating-point tensors can require gradients, this one is ") +
                                    dtype_name(t.dtype) + "; convert with .to(tg::kFloat32) first");
    if (enabled && t.dtype == kBFloat16)
        throw std::invalid_argument("requires_grad_: autograd does not run on bfloat16 tensors; keep parameters float32 and compute "
                                    "in bfloat16 under tg::AutocastGuard, or convert with .to(tg::kFloat32) first");
    impl_->requires_grad = enabled;
    return *this;
}

Tensor Tensor::grad() const {
    const TensorImpl& t = checked();
    return t.grad ? Tensor(t.grad) : Tensor();
}

void Tensor::set_grad(const Tensor& g) {
    checked();
    if (g.defined() && (g.shape() != shape() || g.dtype() != dtype()))
        throw std::invalid_argument("set_grad: gradient " + describe(g) + " does not match the tensor " + describe(*this));
    impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
    checked();
    impl_->grad.reset();
}

Tensor Tensor::detach() const {
    const TensorImpl& t = checked();
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = t.storage;
    impl->data = t.data;
    impl->shape = t.shape;
    impl->strides = t.strides;
    impl->dtype = t.dtype;
    return Tensor(std::move(impl));
}

void Tensor::backward(const Tensor& grad_output, std::optional<bool> retain_graph, bool create_graph) const {
    tapegrad::backward({*this}, grad_output.defined() ? std::vector<Tensor>{grad_output} : std::vector<Tensor>{},
                       retain_graph, create_graph);
}

// ---------------------------------------------------------------- versions

uint64_t Tensor::version() const {
    const TensorImpl& t = checked();
    return t.storage ? t.storage->version.load(std::memory_order_relaxed) : 0;
}
void Tensor::bump_version() const {
    const TensorImpl& t = checked();
    if (t.storage) t.storage->version.fetch_add(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------- factories

Tensor empty(const Shape& shape, TensorOptions options) { return empty(shape, MemoryFormat::Contiguous, options); }

namespace {
// A shape refused here is named after the factory the caller used.
Tensor allocate(const char* op, const Shape& shape, MemoryFormat format, TensorOptions options) {
    const int64_t count = checked_allocation(shape, options.dtype, op);
    const Strides strides = format == MemoryFormat::ChannelsLast ? channels_last_strides(shape) : contiguous_strides(shape);
    Tensor t = make_tensor(shape, strides, options.dtype, count);
    if (options.requires_grad) t.requires_grad_(true);
    return t;
}

Tensor filled(const Shape& shape, double value, TensorOptions options, const char* op) {
    Tensor t = allocate(op, shape, MemoryFormat::Contiguous, {.dtype = options.dtype});
    fill_tensor(t, value, op);
    if (options.requires_grad) t.requires_grad_(true);
    return t;
}
}  // namespace

Tensor empty(const Shape& shape, MemoryFormat format, TensorOptions options) { return allocate("tensor", shape, format, options); }

Tensor full(const Shape& shape, double value, TensorOptions options) { return filled(shape, value, options, "full"); }
Tensor zeros(const Shape& shape, TensorOptions options) { return filled(shape, 0.0, options, "zeros"); }
Tensor ones(const Shape& shape, TensorOptions options) { return filled(shape, 1.0, options, "ones"); }

Tensor empty_like(const Tensor& like) { return empty(like.shape(), like.suggest_memory_format(), {.dtype = like.dtype()}); }
Tensor zeros_like(const Tensor& like) {
    Tensor t = empty_like(like);
    fill_tensor(t, 0.0, "zeros_like");
    return t;
}
Tensor ones_like(const Tensor& like) {
    Tensor t = empty_like(like);
    fill_tensor(t, 1.0, "ones_like");
    return t;
}

namespace {
// A new tensor holding next(), next(), ... in row-major order, each converted with checked_cast:
// integers (from_vector's int64 values, arange's counter) reach an integer dtype exactly, and a
// value the dtype cannot hold is refused naming `op` before the tensor is returned.
template <class Next>
Tensor tensor_of(const Shape& shape, TensorOptions options, const char* op, Next&& next) {
    Tensor t = allocate(op, shape, MemoryFormat::Contiguous, {.dtype = options.dtype});
    dispatch_storage(options.dtype, [&]<class T>() {
        T* p = t.data<T>();
        for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = checked_cast<T>(next(), op);
    });
    if (options.requires_grad) t.requires_grad_(true);
    return t;
}

void check_floating(const char* op, DType dtype) {
    if (!is_floating_point(dtype))
        throw std::invalid_argument(std::string(op) + ": draws floating-point values, not " + dtype_name(dtype) +
                                    "; ask for float32 or float64");
}
}  // namespace

Tensor randn(const Shape& shape, Generator& gen, TensorOptions options) {
    check_floating("randn", options.dtype);
    const auto guard = gen.lock();
    return tensor_of(shape, options, "randn", [&] { return gen.normal(); });
}
Tensor rand(const Shape& shape, Generator& gen, TensorOptions options) {
    check_floating("rand", options.dtype);
    const auto guard = gen.lock();
    return tensor_of(shape, options, "rand", [&] { return gen.uniform(); });
}
Tensor uniform(const Shape& shape, double low, double high, Generator& gen, TensorOptions options) {
    check_floating("uniform", options.dtype);
    if (!(low <= high))
        throw std::invalid_argument("uniform: low (" + std::to_string(low) + ") must not exceed high (" +
                                    std::to_string(high) + ")");
    const auto guard = gen.lock();
    return tensor_of(shape, options, "uniform", [&] { return low + (high - low) * gen.uniform(); });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, TensorOptions options) {
    if (low >= high)
        throw std::invalid_argument("randint: low (" + std::to_string(low) + ") must be less than high (" + std::to_string(high) +
                                    "): the values are drawn from [low, high)");
    // high - low in unsigned arithmetic: the whole int64 range fits, and low + draw wraps back into it.
    const uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
    const auto guard = gen.lock();
    return tensor_of(shape, options, "randint", [&] { return static_cast<int64_t>(static_cast<uint64_t>(low) + gen.below(span)); });
}
Tensor randint(int64_t high, const Shape& shape, Generator& gen, TensorOptions options) {
    return randint(0, high, shape, gen, options);
}
Tensor randperm(int64_t n, Generator& gen, TensorOptions options) {
    if (n < 0) throw std::invalid_argument("randperm: n must not be negative, got " + std::to_string(n));
    std::vector<int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    {
        const auto guard = gen.lock();
        for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[gen.below(static_cast<uint64_t>(i) + 1)]);  // Fisher-Yates
    }
    std::size_t next = 0;
    return tensor_of({n}, options, "randperm", [&] { return order[next++]; });
}

Tensor randn(const Shape& shape, TensorOptions options) { return randn(shape, default_generator(), options); }
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options) {
    return randint(low, high, shape, default_generator(), options);
}
Tensor randint(int64_t high, const Shape& shape, TensorOptions options) { return randint(0, high, shape, default_generator(), options); }
Tensor randperm(int64_t n, TensorOptions options) { return randperm(n, default_generator(), options); }
Tensor rand(const Shape& shape, TensorOptions options) { return rand(shape, default_generator(), options); }
Tensor uniform(const Shape& shape, double low, double high, TensorOptions options) {
    return uniform(shape, low, high, default_generator(), options);
}

Tensor arange(int64_t n, TensorOptions options) {
    int64_t i = 0;
    return tensor_of(Shape{n}, options, "arange", [&] { return i++; });
}

Tensor scalar_tensor(double value, TensorOptions options) { return filled(Shape{}, value, options, "scalar_tensor"); }

namespace {
template <class V>
Tensor tensor_from_values(const std::vector<V>& values, const Shape& shape, TensorOptions options, const char* op) {
    const int64_t count = checked_numel(shape, op);
    if (static_cast<int64_t>(values.size()) != count)
        throw std::invalid_argument(std::string(op) + ": " + std::to_string(values.size()) + " values cannot fill shape " +
                                    to_string(shape) + " (" + std::to_string(count) + " elements)");
    std::size_t i = 0;
    return tensor_of(shape, options, op, [&] { return values[i++]; });
}
}  // namespace

Tensor from_vector(const std::vector<float>& values, const Shape& shape, TensorOptions options) {
    return tensor_from_values(values, shape, options, "from_vector");
}
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
    return tensor_from_values(values, shape, options, "from_vector");
}
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, TensorOptions options) {
    return tensor_from_values(values, shape, options, "from_vector");
}
Tensor tensor(std::initializer_list<double> values, TensorOptions options) {
    return tensor_from_values(std::vector<double>(values), Shape{static_cast<int64_t>(values.size())}, options, "tensor");
}
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, TensorOptions options) {
    std::vector<double> values;
    const std::size_t cols = rows.size() ? rows.begin()->size() : 0;
    for (const auto& row : rows) {
        if (row.size() != cols)
            throw std::invalid_argument("tensor: rows have different lengths (" + std::to_string(cols) + " and " +
                                        std::to_string(row.size()) + ")");
        values.insert(values.end(), row.begin(), row.end());
    }
    return tensor_from_values(values, Shape{static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols)}, options, "tensor");
}

// ---------------------------------------------------------------- comparison

namespace {
// Calls visit(|a_i - b_i|, |b_i|) for each element in turn until it returns false. Two integer
// tensors are subtracted exactly (in uint64, which holds any int64 difference) before the result
// becomes a double, so 2^53 + 1 and 2^53 differ by 1 rather than by 0.
template <class Visit>
void visit_differences(const Tensor& a, const Tensor& b, Visit&& visit) {
    if (!is_floating_point(a.dtype()) && !is_floating_point(b.dtype())) {
        const auto va = a.to_vector<int64_t>(), vb = b.to_vector<int64_t>();
        for (std::size_t i = 0; i < va.size(); ++i) {
            const auto x = static_cast<uint64_t>(va[i]), y = static_cast<uint64_t>(vb[i]);
            const uint64_t d = va[i] >= vb[i] ? x - y : y - x;
            if (!visit(static_cast<double>(d), std::abs(static_cast<double>(vb[i])))) return;
        }
        return;
    }
    const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
    for (std::size_t i = 0; i < va.size(); ++i)
        if (!visit(std::abs(va[i] - vb[i]), std::abs(vb[i]))) return;
}
}  // namespace

double max_abs_diff(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape())
        throw std::invalid_argument("max_abs_diff: shapes " + to_string(a.shape()) + " and " + to_string(b.shape()) + " differ");
    double m = 0;
    visit_differences(a, b, [&](double d, double) {
        m = std::isnan(d) ? d : std::max(m, d);
        return !std::isnan(d);
    });
    return m;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
    if (!a.defined() || !b.defined() || a.shape() != b.shape()) return false;
    bool close = true;
    visit_differences(a, b, [&](double d, double magnitude) { return close = d <= atol + rtol * magnitude; });
    return close;
}

std::string describe(const Tensor& t) {
    if (!t.defined()) return "undefined";
    return to_string(t.shape()) + " " + dtype_name(t.dtype());
}

}  // namespace tapegrad
