#pragma once
// Tensor: a shape, strides and a dtype over shared storage, plus what autograd needs (requires_grad,
// the accumulated gradient of a leaf, and the node that made a non-leaf).
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include "engine/source_location.hpp"
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "engine/dtype.hpp"
#include "engine/hooks.hpp"
#include "engine/shape.hpp"

namespace tapegrad {

class Node;
class Generator;
class Device;
struct Storage;

// An integer scalar: the 2 of x * 2, the 1 of i += 1. As libtorch's integral Scalar, it keeps an
// integer tensor's dtype (int64 [1, 2] * 2 is int64, int32 stays int32), makes a bool tensor
// int64, and is the same number as a double for a floating-point tensor. A double scalar gives an
// integer tensor a float32 result (i * 2.0), as a Python float does.
struct IntegerScalar {
    int64_t value;
};
template <class S>
concept IntegerLike = std::integral<S> && !std::same_as<S, bool>;

enum class MemoryFormat : uint8_t {
    Contiguous,    // row-major
    ChannelsLast,  // 4-D [N,C,H,W] stored as N,H,W,C: what oneDNN's fast convolutions want
};

struct TensorOptions {
    DType dtype = kFloat32;
    bool requires_grad = false;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    void* data = nullptr;  // first element, inside storage
    Shape shape;
    Strides strides;  // in elements
    DType dtype = kFloat32;
    bool requires_grad = false;
    bool is_view = false;  // made by a view op (view, permute, expand, ...): shares its base's elements
    std::shared_ptr<TensorImpl> grad;  // leaves only
    std::shared_ptr<Node> grad_fn;     // non-leaves only
    std::shared_ptr<GradHooks> hooks;  // leaves only; null until a hook is registered
};

class Tensor {
public:
    Tensor() = default;  // an undefined tensor: no storage, used for "no gradient"
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return checked().shape; }
    const Shape& sizes() const { return shape(); }
    int64_t size(int64_t axis) const;
    const Strides& strides() const { return checked().strides; }
    std::size_t dim() const { return shape().size(); }
    int64_t numel() const { return numel_of(shape()); }
    DType dtype() const { return checked().dtype; }
    bool is_contiguous(MemoryFormat format = MemoryFormat::Contiguous) const;
    // PyTorch's suggest_memory_format: ChannelsLast for a 4-D tensor whose strides run in N,H,W,C
    // order (dense or not: a slice of a channels-last tensor stays channels-last), with PyTorch's
    // tie rules for size-1 dimensions; Contiguous otherwise. Ops that propagate a layout (conv2d,
    // pooling, batch_norm, elementwise ops) give their outputs the format their inputs suggest.
    MemoryFormat suggest_memory_format() const;

    void* data_ptr() const { return checked().data; }
    // Raw access; throws std::invalid_argument when T is not the tensor's dtype.
    template <class T>
    T* data() const;
    // Element by index (any layout), converted to T (double unless asked): at<int64_t>() reads an
    // int64 exactly. A value T cannot hold (NaN or 1e30 as int64, 2^40 as int32) is refused with
    // std::invalid_argument, as PyTorch's item<T>() does.
    template <class T = double>
    T at(std::initializer_list<int64_t> index) const;
    // The value of a one-element tensor, converted to T as at() does.
    template <class T = double>
    T item() const;
    // A copy of the elements in row-major order.
    template <class T>
    std::vector<T> to_vector() const;

    // ---- autograd
    bool requires_grad() const { return defined() && impl_->requires_grad; }
    // Marks a leaf as a parameter whose gradient is wanted; fails on non-leaves.
    Tensor& requires_grad_(bool enabled = true);
    bool is_leaf() const { return !defined() || impl_->grad_fn == nullptr; }
    // The gradient accumulated by backward() into this leaf; undefined if none yet.
    Tensor grad() const;
    void set_grad(const Tensor& g);
    // Drops the accumulated gradient (PyTorch's set_to_none).
    void zero_grad();
    const std::shared_ptr<Node>& grad_fn() const { return checked().grad_fn; }
    // Same storage, no history: a leaf that does not require grad.
    Tensor detach() const;
    // Backpropagates from this tensor. A scalar needs no grad_output. create_graph records the
    // backward pass so that .grad() can be differentiated again; retain_graph defaults to it.
    void backward(const Tensor& grad_output = Tensor(), std::optional<bool> retain_graph = std::nullopt,
                  bool create_graph = false) const;
    // Runs `hook` on this tensor's gradient during backward (and grad()); a defined return value
    // replaces the gradient. On a leaf it sees the gradient summed over this pass, before it is
    // added into .grad(); on a non-leaf, the gradient flowing into its grad_fn. Hooks run in
    // registration order. The tensor must require grad.
    HookHandle register_hook(GradHook hook) const;
    // Runs `hook` on a leaf that requires grad as soon as its .grad() holds this backward pass's
    // final gradient, while the rest of the pass may still be running (data-parallel training
    // starts reducing it there). Not run by grad(), which accumulates nothing.
    HookHandle register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;

    // ---- copies and views (differentiable)
    Tensor clone() const;
    Tensor contiguous(MemoryFormat format = MemoryFormat::Contiguous) const;
    Tensor to(DType dtype) const;
    // The same elements in `format`'s layout: this tensor when it already is, else a copy
    // (PyTorch's x.to(memory_format=...)); the same as contiguous(format).
    Tensor to(MemoryFormat format) const;
    // libtorch's device members (Device is nn/device.hpp's): tapegrad runs on the CPU, so every
    // tensor is there. x.to(device) and x.cpu() return x itself (as libtorch does for a tensor
    // already on the device), x.to(device, dtype) is x.to(dtype); a CUDA device, and x.cuda(),
    // throw std::invalid_argument saying that tapegrad runs on the CPU.
    Tensor to(const Device& device) const;
    Tensor to(const Device& device, DType dtype) const;
    Device device() const;
    bool is_cpu() const noexcept { return true; }
    bool is_cuda() const noexcept { return false; }
    Tensor cpu() const { return *this; }
    Tensor cuda() const;
    Tensor reshape(const Shape& shape) const;
    Tensor view(const Shape& shape) const;
    Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
    Tensor transpose(int64_t dim0, int64_t dim1) const;
    Tensor permute(const Shape& dims) const;
    // Views along one dimension (ops/shape_ops.hpp): x[.., start:start+length], x[.., start:end:step],
    // x[.., index].
    Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
    Tensor slice(int64_t dim, int64_t start = 0, int64_t end = INT64_MAX, int64_t step = 1) const;
    Tensor select(int64_t dim, int64_t index) const;
    // x.squeeze() drops every dimension of size 1, x.squeeze(d) only d (when it is 1).
    Tensor squeeze() const;
    Tensor squeeze(int64_t dim) const;
    Tensor unsqueeze(int64_t dim) const;
    // A size of -1 keeps that dimension's size; new leading dimensions may be added.
    Tensor expand(const Shape& sizes) const;
    Tensor expand_as(const Tensor& other) const;
    Tensor view_as(const Tensor& other) const;
    Tensor reshape_as(const Tensor& other) const;
    // The transpose of a matrix; a 0-d or 1-d tensor as it is (PyTorch's t()).
    Tensor t() const;
    // x[i]: select(0, i), a view sharing x's elements (libtorch's operator[] with an integer).
    Tensor operator[](int64_t index) const;

    // ---- reductions (ops/reduce.hpp)
    Tensor sum() const;
    Tensor sum(const std::vector<int64_t>& axes, bool keepdim = false) const;
    Tensor mean() const;
    Tensor mean(const std::vector<int64_t>& axes, bool keepdim = false) const;
    // One axis, x.sum(1). Templates, so that x.sum({}, true) still means every axis (as an empty
    // list does in libtorch), not an int64_t axis 0.
    template <std::integral Axis>
    Tensor sum(Axis axis, bool keepdim = false) const {
        return sum(std::vector<int64_t>{static_cast<int64_t>(axis)}, keepdim);
    }
    template <std::integral Axis>
    Tensor mean(Axis axis, bool keepdim = false) const {
        return mean(std::vector<int64_t>{static_cast<int64_t>(axis)}, keepdim);
    }
    // The largest (smallest) element, 0-d; the gradient is shared evenly by the elements equal to it.
    Tensor max() const;
    Tensor min() const;
    // (values, indices) along `axis`, as libtorch's x.max(dim): auto [values, indices] = x.max(1).
    std::tuple<Tensor, Tensor> max(int64_t axis, bool keepdim = false) const;
    std::tuple<Tensor, Tensor> min(int64_t axis, bool keepdim = false) const;
    Tensor argmax() const;
    Tensor argmax(int64_t axis, bool keepdim = false) const;
    Tensor argmin() const;
    Tensor argmin(int64_t axis, bool keepdim = false) const;
    // Whether every (some) element is nonzero, over all of them or along `dim`: bool tensors
    // (ops/reduce_logical.hpp), as libtorch's x.all(), x.any(1, true).
    Tensor all() const;
    Tensor all(int64_t dim, bool keepdim = false) const;
    Tensor any() const;
    Tensor any(int64_t dim, bool keepdim = false) const;
    // The vector p-norm over every element or over `dims` (ops/norm.hpp): x.norm(), x.norm(2, 1),
    // x.norm(1, {0, 1}, true).
    Tensor norm(double p = 2.0) const;
    Tensor norm(double p, const std::vector<int64_t>& dims, bool keepdim = false) const;
    template <std::integral Axis>
    Tensor norm(double p, Axis dim, bool keepdim = false) const {
        return norm(p, std::vector<int64_t>{static_cast<int64_t>(dim)}, keepdim);
    }

    // ---- comparisons (ops/compare.hpp): bool tensors without gradient, x.eq(y), x.gt(0.5)
    Tensor eq(const Tensor& other) const;
    Tensor ne(const Tensor& other) const;
    Tensor lt(const Tensor& other) const;
    Tensor le(const Tensor& other) const;
    Tensor gt(const Tensor& other) const;
    Tensor ge(const Tensor& other) const;
    Tensor eq(double other) const;
    Tensor ne(double other) const;
    Tensor lt(double other) const;
    Tensor le(double other) const;
    Tensor gt(double other) const;
    Tensor ge(double other) const;

    // ---- maths (differentiable): libtorch's member spellings of the functions in ops/
    Tensor add(const Tensor& other, double alpha = 1.0) const;
    Tensor add(double other) const;
    Tensor sub(const Tensor& other) const;
    Tensor sub(double other) const;
    Tensor mul(const Tensor& other) const;
    Tensor mul(double other) const;
    Tensor add(IntegerScalar other) const;
    Tensor sub(IntegerScalar other) const;
    Tensor mul(IntegerScalar other) const;
    template <IntegerLike S>
    Tensor add(S other) const { return add(IntegerScalar{static_cast<int64_t>(other)}); }
    template <IntegerLike S>
    Tensor sub(S other) const { return sub(IntegerScalar{static_cast<int64_t>(other)}); }
    template <IntegerLike S>
    Tensor mul(S other) const { return mul(IntegerScalar{static_cast<int64_t>(other)}); }
    Tensor div(const Tensor& other) const;
    Tensor div(double other) const;
    Tensor neg() const;
    Tensor pow(double exponent) const;
    Tensor pow(const Tensor& exponent) const;
    Tensor pow(IntegerScalar exponent) const;
    template <IntegerLike S>
    Tensor pow(S exponent) const { return pow(IntegerScalar{static_cast<int64_t>(exponent)}); }
    Tensor abs() const;
    Tensor exp() const;
    Tensor log() const;
    Tensor sqrt() const;
    Tensor sigmoid() const;
    Tensor tanh() const;
    Tensor relu() const;
    Tensor clamp(std::optional<double> min, std::optional<double> max = std::nullopt) const;
    Tensor clamp_min(double min) const;
    Tensor clamp_max(double max) const;
    // The product of two matrices ([n,m] x [m,p]); matmul also broadcasts batches and takes vectors.
    Tensor mm(const Tensor& other) const;
    Tensor matmul(const Tensor& other) const;

    // ---- in-place writes (ops/inplace.cpp). Each bumps the version counter that the tensor shares
    // with its views and detach(); backward refuses a saved tensor whose version changed. On a
    // leaf that requires grad they are refused unless grad mode is off (NoGradGuard), as in
    // PyTorch. On a tensor with history, with grad mode on, they are recorded: the tensor's
    // history becomes the in-place op's (relu_ of y: y's grad_fn is now relu's node).
    Tensor& fill_(double value);
    Tensor& zero_() { return fill_(0.0); }
    Tensor& copy_(const Tensor& src);
    Tensor& add_(const Tensor& other, double alpha = 1.0);
    Tensor& add_(double value);
    Tensor& sub_(const Tensor& other);
    Tensor& sub_(double value);
    Tensor& mul_(const Tensor& other);
    Tensor& mul_(double value);
    Tensor& add_(IntegerScalar value);
    Tensor& sub_(IntegerScalar value);
    Tensor& mul_(IntegerScalar value);
    template <IntegerLike S>
    Tensor& add_(S value) { return add_(IntegerScalar{static_cast<int64_t>(value)}); }
    template <IntegerLike S>
    Tensor& sub_(S value) { return sub_(IntegerScalar{static_cast<int64_t>(value)}); }
    template <IntegerLike S>
    Tensor& mul_(S value) { return mul_(IntegerScalar{static_cast<int64_t>(value)}); }
    Tensor& div_(const Tensor& other);
    Tensor& div_(double value);
    Tensor& relu_();
    // In-place twins of the maths above (x.exp_() is x = x.exp() written into x's elements).
    Tensor& neg_();
    Tensor& abs_();
    Tensor& exp_();
    Tensor& log_();
    Tensor& sqrt_();
    Tensor& sigmoid_();
    Tensor& tanh_();
    Tensor& pow_(double exponent);
    Tensor& clamp_(std::optional<double> min, std::optional<double> max = std::nullopt);
    Tensor& clamp_min_(double min);
    Tensor& clamp_max_(double max);
    Tensor& operator+=(const Tensor& other) { return add_(other); }
    Tensor& operator+=(double value) { return add_(value); }
    Tensor& operator-=(const Tensor& other) { return sub_(other); }
    Tensor& operator-=(double value) { return sub_(value); }
    Tensor& operator*=(const Tensor& other) { return mul_(other); }
    Tensor& operator*=(double value) { return mul_(value); }
    template <IntegerLike S>
    Tensor& operator+=(S value) { return add_(value); }
    template <IntegerLike S>
    Tensor& operator-=(S value) { return sub_(value); }
    template <IntegerLike S>
    Tensor& operator*=(S value) { return mul_(value); }
    Tensor& operator/=(const Tensor& other) { return div_(other); }
    Tensor& operator/=(double value) { return div_(value); }
    // Overwrite every element with a draw from U[from, to) or N(mean, std^2), in row-major order:
    // the values uniform() / randn() give from the same generator state. Floating-point tensors only.
    Tensor& uniform_(double from, double to, Generator& gen);
    Tensor& normal_(double mean, double std, Generator& gen);
    // The same from the default generator (engine/generator.hpp: manual_seed), libtorch's defaults.
    Tensor& uniform_(double from = 0.0, double to = 1.0);
    Tensor& normal_(double mean = 0.0, double std = 1.0);
    // Where mask (bool, broadcast to this shape) is true, value (ops/compare.hpp's masked_fill).
    Tensor& masked_fill_(const Tensor& mask, double value);
    // Each element replaced by a draw that is 1 with probability p and 0 otherwise, from `gen` or
    // the default generator (ops/dropout.hpp's bernoulli).
    Tensor& bernoulli_(double p);
    Tensor& bernoulli_(double p, Generator& gen);
    // How many in-place writes the storage has seen (PyTorch's _version).
    uint64_t version() const;
    // Records an in-place write done through data<T>() (optimizers, initialisers, kernels that
    // write into an existing tensor).
    void bump_version() const;

    // Identity of the underlying implementation (for dictionaries of parameters).
    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool same(const Tensor& other) const { return impl_ == other.impl_; }

private:
    const TensorImpl& checked() const;
    std::shared_ptr<TensorImpl> impl_;
};

// ---- factories
Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor empty(const Shape& shape, MemoryFormat format, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
// Same shape, dtype and memory format as `like`.
Tensor empty_like(const Tensor& like);
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor randn(const Shape& shape, Generator& gen, TensorOptions options = {});
Tensor rand(const Shape& shape, Generator& gen, TensorOptions options = {});
// Integers drawn uniformly from [low, high), or [0, high), as torch.randint; int64 unless the
// options name another dtype.
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, TensorOptions options = {.dtype = kInt64});
Tensor randint(int64_t high, const Shape& shape, Generator& gen, TensorOptions options = {.dtype = kInt64});
// A random permutation of 0, ..., n - 1, as torch.randperm; int64 unless the options say otherwise.
Tensor randperm(int64_t n, Generator& gen, TensorOptions options = {.dtype = kInt64});
Tensor uniform(const Shape& shape, double low, double high, Generator& gen, TensorOptions options = {});
// The same, drawn from the default generator (engine/generator.hpp: manual_seed).
Tensor randn(const Shape& shape, TensorOptions options = {});
Tensor rand(const Shape& shape, TensorOptions options = {});
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options = {.dtype = kInt64});
Tensor randint(int64_t high, const Shape& shape, TensorOptions options = {.dtype = kInt64});
Tensor randperm(int64_t n, TensorOptions options = {.dtype = kInt64});
Tensor uniform(const Shape& shape, double low, double high, TensorOptions options = {});
Tensor arange(int64_t n, TensorOptions options = {});
Tensor scalar_tensor(double value, TensorOptions options = {});
// Copies `values` into a new tensor of `shape`; the sizes must agree.
Tensor from_vector(const std::vector<float>& values, const Shape& shape, TensorOptions options = {});
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options = {});
// Integer values (labels, indices): int64 unless options say otherwise.
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, TensorOptions options = {.dtype = kInt64});
// tensor({1, 2, 3}) and tensor({{1, 2}, {3, 4}})
Tensor tensor(std::initializer_list<double> values, TensorOptions options = {});
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, TensorOptions options = {});

// Printing as PyTorch's repr prints (engine/print.cpp): tensor([[1.0000, 2.0000], ...], requires_grad=True),
// with its integer, fixed-point and scientific modes and its summary of large tensors.
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);
// "[2,3] float32"
std::string describe(const Tensor& t);

// True when both are defined, have the same shape and all elements are within
// atol + rtol * |b| (dtypes may differ).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
// The largest absolute elementwise difference (shapes must match).
double max_abs_diff(const Tensor& a, const Tensor& b);

// ---- arithmetic with broadcasting (defined in ops/arithmetic.cpp)
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);
Tensor operator+(const Tensor& a, IntegerScalar s);
Tensor operator-(const Tensor& a, IntegerScalar s);
Tensor operator*(const Tensor& a, IntegerScalar s);
Tensor operator+(IntegerScalar s, const Tensor& a);
Tensor operator-(IntegerScalar s, const Tensor& a);
Tensor operator*(IntegerScalar s, const Tensor& a);
template <IntegerLike S>
Tensor operator+(const Tensor& a, S s) { return a + IntegerScalar{static_cast<int64_t>(s)}; }
template <IntegerLike S>
Tensor operator-(const Tensor& a, S s) { return a - IntegerScalar{static_cast<int64_t>(s)}; }
template <IntegerLike S>
Tensor operator*(const Tensor& a, S s) { return a * IntegerScalar{static_cast<int64_t>(s)}; }
template <IntegerLike S>
Tensor operator+(S s, const Tensor& a) { return IntegerScalar{static_cast<int64_t>(s)} + a; }
template <IntegerLike S>
Tensor operator-(S s, const Tensor& a) { return IntegerScalar{static_cast<int64_t>(s)} - a; }
template <IntegerLike S>
Tensor operator*(S s, const Tensor& a) { return IntegerScalar{static_cast<int64_t>(s)} * a; }

}  // namespace tapegrad
