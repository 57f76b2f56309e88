// The ops of the registry against PyTorch 1.13 on adversarial inputs (tests/differential/
// reference.txt, written by tests/differential/make_reference.py): 0-d tensors, zero-size dims,
// broadcasting of [1] and [] against [N], transposed, stepped and expanded views, int64, int32 and
// bool inputs (PyTorch's type promotion), inf, NaN and -0.0, ties, negative dims and keepdim. Each
// case must raise where PyTorch raises and otherwise give its dtype, shape and values (the sign of
// a zero, inf and NaN included), the gradient of sum(w * y) for every floating input and, for the
// activations and losses, the second derivative.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace tg = tapegrad;
using tg::Reduction;
using tg::Tensor;

namespace {

using Args = std::vector<Tensor>;
using Op = std::function<Tensor(const Args&)>;

// The ops by the names make_reference.py gives them.
const std::map<std::string, Op>& ops() {
    static const std::map<std::string, Op> table = {
        {"relu", [](const Args& a) { return tg::relu(a[0]); }},
        {"sigmoid", [](const Args& a) { return tg::sigmoid(a[0]); }},
        {"tanh", [](const Args& a) { return tg::tanh(a[0]); }},
        {"exp", [](const Args& a) { return tg::exp(a[0]); }},
        {"log", [](const Args& a) { return tg::log(a[0]); }},
        {"sqrt", [](const Args& a) { return tg::sqrt(a[0]); }},
        {"abs", [](const Args& a) { return tg::abs(a[0]); }},
        {"neg", [](const Args& a) { return tg::neg(a[0]); }},
        {"sign", [](const Args& a) { return tg::sign(a[0]); }},
        {"pow2", [](const Args& a) { return a[0].pow(2); }},
        {"pow3", [](const Args& a) { return tg::pow(a[0], 3.0); }},
        {"pow0.5", [](const Args& a) { return tg::pow(a[0], 0.5); }},
        {"pow0", [](const Args& a) { return tg::pow(a[0], 0.0); }},
        {"pow-1", [](const Args& a) { return tg::pow(a[0], -1.0); }},
        {"clamp-1,1", [](const Args& a) { return tg::clamp(a[0], -1.0, 1.0); }},
        {"clamp_min0", [](const Args& a) { return a[0].clamp_min(0.0); }},
        {"hardtanh", [](const Args& a) { return tg::hardtanh(a[0]); }},
        {"relu6", [](const Args& a) { return tg::relu6(a[0]); }},
        {"leaky_relu", [](const Args& a) { return tg::leaky_relu(a[0], 0.1); }},
        {"elu", [](const Args& a) { return tg::elu(a[0]); }},
        {"gelu", [](const Args& a) { return tg::gelu(a[0]); }},
        {"gelu_tanh", [](const Args& a) { return tg::gelu(a[0], tg::GeluApproximate::Tanh); }},
        {"silu", [](const Args& a) { return tg::silu(a[0]); }},
        {"softplus", [](const Args& a) { return tg::softplus(a[0]); }},
        {"softplus2,6", [](const Args& a) { return tg::softplus(a[0], 2.0, 6.0); }},
        {"hardswish", [](const Args& a) { return tg::hardswish(a[0]); }},
        {"hardsigmoid", [](const Args& a) { return tg::hardsigmoid(a[0]); }},
        {"logical_not", [](const Args& a) { return tg::logical_not(a[0]); }},
        {"bitwise_not", [](const Args& a) { return tg::bitwise_not(a[0]); }},
        {"mul2.5", [](const Args& a) { return a[0] * 2.5; }},
        {"mul2", [](const Args& a) { return a[0] * 2; }},
        {"add1", [](const Args& a) { return a[0] + 1; }},
        {"add0.5", [](const Args& a) { return a[0] + 0.5; }},
        {"div2", [](const Args& a) { return a[0] / 2.0; }},
        {"rsub1", [](const Args& a) { return 1 - a[0]; }},
        {"eq0", [](const Args& a) { return tg::eq(a[0], 0.0); }},
        {"gt0", [](const Args& a) { return tg::gt(a[0], 0.0); }},
        {"softmax", [](const Args& a) { return tg::softmax(a[0], -1); }},
        {"softmax0", [](const Args& a) { return tg::softmax(a[0], 0); }},
        {"log_softmax", [](const Args& a) { return tg::log_softmax(a[0], -1); }},
        {"log_softmax0", [](const Args& a) { return tg::log_softmax(a[0], 0); }},
        {"sum", [](const Args& a) { return tg::sum(a[0]); }},
        {"sum0", [](const Args& a) { return tg::sum(a[0], {0}); }},
        {"sum-1k", [](const Args& a) { return tg::sum(a[0], {-1}, true); }},
        {"mean", [](const Args& a) { return tg::mean(a[0]); }},
        {"mean0", [](const Args& a) { return tg::mean(a[0], {0}); }},
        {"mean-1k", [](const Args& a) { return tg::mean(a[0], {-1}, true); }},
        {"var", [](const Args& a) { return tg::var(a[0]); }},
        {"var0", [](const Args& a) { return tg::var(a[0], {0}); }},
        {"var-1k", [](const Args& a) { return tg::var(a[0], {-1}, 1, true); }},
        {"std", [](const Args& a) { return tg::std(a[0]); }},
        {"std-1", [](const Args& a) { return tg::std(a[0], {-1}); }},
        {"var_biased", [](const Args& a) { return tg::var(a[0], {}, 0); }},
        {"max", [](const Args& a) { return tg::max(a[0]); }},
        {"min", [](const Args& a) { return tg::min(a[0]); }},
        {"max0", [](const Args& a) { return tg::max(a[0], 0); }},
        {"max-1k", [](const Args& a) { return tg::max(a[0], -1, true); }},
        {"min0", [](const Args& a) { return tg::min(a[0], 0); }},
        {"max0i", [](const Args& a) { return tg::max_with_indices(a[0], 0).indices; }},
        {"min-1i", [](const Args& a) { return tg::min_with_indices(a[0], -1).indices; }},
        {"argmax", [](const Args& a) { return tg::argmax(a[0]); }},
        {"argmin", [](const Args& a) { return tg::argmin(a[0]); }},
        {"argmax0", [](const Args& a) { return tg::argmax(a[0], 0); }},
        {"argmin-1k", [](const Args& a) { return tg::argmin(a[0], -1, true); }},
        {"norm", [](const Args& a) { return tg::norm(a[0]); }},
        {"norm1", [](const Args& a) { return tg::norm(a[0], 1.0); }},
        {"norm_d-1", [](const Args& a) { return tg::norm(a[0], 2.0, {-1}); }},
        {"any", [](const Args& a) { return tg::any(a[0]); }},
        {"all", [](const Args& a) { return tg::all(a[0]); }},
        {"any0", [](const Args& a) { return tg::any(a[0], 0); }},
        {"all-1k", [](const Args& a) { return tg::all(a[0], -1, true); }},
        {"add", [](const Args& a) { return tg::add(a[0], a[1]); }},
        {"sub", [](const Args& a) { return tg::sub(a[0], a[1]); }},
        {"mul", [](const Args& a) { return tg::mul(a[0], a[1]); }},
        {"div", [](const Args& a) { return tg::div(a[0], a[1]); }},
        {"pow", [](const Args& a) { return tg::pow(a[0], a[1]); }},
        {"maximum", [](const Args& a) { return tg::maximum(a[0], a[1]); }},
        {"minimum", [](const Args& a) { return tg::minimum(a[0], a[1]); }},
        {"eq", [](const Args& a) { return tg::eq(a[0], a[1]); }},
        {"lt", [](const Args& a) { return tg::lt(a[0], a[1]); }},
        {"ge", [](const Args& a) { return tg::ge(a[0], a[1]); }},
        {"logical_and", [](const Args& a) { return tg::logical_and(a[0], a[1]); }},
        {"bitwise_and", [](const Args& a) { return tg::bitwise_and(a[0], a[1]); }},
        {"matmul", [](const Args& a) { return tg::matmul(a[0], a[1]); }},
        {"mm", [](const Args& a) { return tg::mm(a[0], a[1]); }},
        {"cat0", [](const Args& a) { return tg::cat({a[0], a[1]}, 0); }},
        {"cat-1", [](const Args& a) { return tg::cat({a[0], a[1]}, -1); }},
        {"stack0", [](const Args& a) { return tg::stack({a[0], a[1]}, 0); }},
        {"stack-1", [](const Args& a) { return tg::stack({a[0], a[1]}, -1); }},
        {"where", [](const Args& a) { return tg::where(a[0], a[1], a[2]); }},
        {"mse_loss", [](const Args& a) { return tg::mse_loss(a[0], a[1]); }},
        {"l1_loss", [](const Args& a) { return tg::l1_loss(a[0], a[1]); }},
        {"smooth_l1_loss", [](const Args& a) { return tg::smooth_l1_loss(a[0], a[1]); }},
        {"huber_loss", [](const Args& a) { return tg::huber_loss(a[0], a[1]); }},
        {"kl_div", [](const Args& a) { return tg::kl_div(a[0], a[1], {.reduction = Reduction::BatchMean}); }},
        {"bce", [](const Args& a) { return tg::binary_cross_entropy(a[0], a[1]); }},
        {"bce_logits", [](const Args& a) { return tg::binary_cross_entropy_with_logits(a[0], a[1]); }},
        {"mse_loss_sum", [](const Args& a) { return tg::mse_loss(a[0], a[1], Reduction::Sum); }},
        {"l1_loss_none", [](const Args& a) { return tg::l1_loss(a[0], a[1], Reduction::None); }},
        {"cross_entropy", [](const Args& a) { return tg::cross_entropy(a[0], a[1]); }},
        {"cross_entropy_smooth", [](const Args& a) { return tg::cross_entropy(a[0], a[1], {.label_smoothing = 0.1}); }},
        {"cross_entropy_sum", [](const Args& a) { return tg::cross_entropy(a[0], a[1], {.reduction = Reduction::Sum}); }},
        {"nll_loss", [](const Args& a) { return tg::nll_loss(a[0], a[1]); }},
        {"layer_norm", [](const Args& a) { return tg::layer_norm(a[0], {a[0].dim() ? a[0].size(-1) : 1}); }},
        {"layer_norm_affine", [](const Args& a) { return tg::layer_norm(a[0], {a[0].size(-1)}, a[1], a[2]); }},
        {"group_norm2", [](const Args& a) { return tg::group_norm(a[0], 2); }},
        {"gather1", [](const Args& a) { return tg::gather(a[0], 1, a[1]); }},
        {"index_select0", [](const Args& a) { return tg::index_select(a[0], 0, a[1]); }},
        {"index_select-1", [](const Args& a) { return tg::index_select(a[0], -1, a[1]); }},
        {"masked_fill", [](const Args& a) { return tg::masked_fill(a[0], a[1], -1.5); }},
        {"linear", [](const Args& a) { return tg::linear(a[0], a[1]); }},
        {"linear_bias", [](const Args& a) { return tg::linear(a[0], a[1], a[2]); }},
        {"max_pool2d", [](const Args& a) { return tg::max_pool2d(a[0], tg::Pair(2)); }},
        {"avg_pool2d", [](const Args& a) { return tg::avg_pool2d(a[0], {.kernel_size = 2}); }},
        {"adaptive_avg_pool2d", [](const Args& a) { return tg::adaptive_avg_pool2d(a[0], 1); }},
        {"max_pool2d_pad", [](const Args& a) { return tg::max_pool2d(a[0], tg::Pair(3), tg::Pair(2), tg::Pair(1)); }},
        {"pad", [](const Args& a) { return tg::pad(a[0], {1, 2}); }},
        {"pad_reflect", [](const Args& a) { return tg::pad(a[0], {1, 1}, tg::PadMode::Reflect); }},
        {"pad_replicate", [](const Args& a) { return tg::pad(a[0], {1, 1}, tg::PadMode::Replicate); }},
        {"clamp_t", [](const Args& a) { return tg::clamp(a[0], a[1], a[2]); }},
        {"logical_or", [](const Args& a) { return tg::logical_or(a[0], a[1]); }},
        {"logical_xor", [](const Args& a) { return tg::logical_xor(a[0], a[1]); }},
        {"bitwise_or", [](const Args& a) { return tg::bitwise_or(a[0], a[1]); }},
        {"bitwise_xor", [](const Args& a) { return tg::bitwise_xor(a[0], a[1]); }},
        {"squeeze", [](const Args& a) { return tg::squeeze(a[0]); }},
        {"squeeze0", [](const Args& a) { return tg::squeeze(a[0], 0); }},
        {"unsqueeze-1", [](const Args& a) { return tg::unsqueeze(a[0], -1); }},
        {"flatten", [](const Args& a) { return tg::flatten(a[0]); }},
        {"permute10", [](const Args& a) { return tg::permute(a[0], {1, 0}); }},
        {"transpose0-1", [](const Args& a) { return tg::transpose(a[0], 0, -1); }},
        {"select-1", [](const Args& a) { return tg::select(a[0], -1, 0); }},
        {"narrow0", [](const Args& a) { return tg::narrow(a[0], 0, 0, 1); }},
        {"slice_step", [](const Args& a) { return tg::slice(a[0], 0, 0, std::numeric_limits<int64_t>::max(), 2); }},
        {"reshape-1", [](const Args& a) { return tg::reshape(a[0], {-1}); }},
        {"sum01", [](const Args& a) { return tg::sum(a[0], {0, 1}); }},
        {"mean-1-2k", [](const Args& a) { return tg::mean(a[0], {-1, -2}, true); }},
        {"add_", [](const Args& a) { Tensor c = a[0].clone(); c.add_(a[1]); return c; }},
        {"mul_", [](const Args& a) { Tensor c = a[0].clone(); c.mul_(a[1]); return c; }},
        {"div_", [](const Args& a) { Tensor c = a[0].clone(); c.div_(a[1]); return c; }},
        {"sub_", [](const Args& a) { Tensor c = a[0].clone(); c.sub_(a[1]); return c; }},
        {"relu_", [](const Args& a) { Tensor c = a[0].clone(); c.relu_(); return c; }},
        {"exp_", [](const Args& a) { Tensor c = a[0].clone(); c.exp_(); return c; }},
        {"clamp_", [](const Args& a) { Tensor c = a[0].clone(); c.clamp_(-1.0, 1.0); return c; }},
        {"neg_", [](const Args& a) { Tensor c = a[0].clone(); c.neg_(); return c; }},
        {"sqrt_", [](const Args& a) { Tensor c = a[0].clone(); c.sqrt_(); return c; }},
        {"batch_norm", [](const Args& a) { return tg::batch_norm(a[0], Tensor(), Tensor(), Tensor(), Tensor()); }},
        {"batch_norm_affine", [](const Args& a) { return tg::batch_norm(a[0], Tensor(), Tensor(), a[1], a[2]); }},
        {"interpolate_nearest", [](const Args& a) { return tg::interpolate(a[0], {.scale_factor = 2.0}); }},
        {"interpolate_bilinear",
         [](const Args& a) { return tg::interpolate(a[0], {.size = tg::Pair{3, 5}, .mode = tg::InterpolateMode::Bilinear}); }},
        {"scatter_add1", [](const Args& a) { return tg::scatter_add(a[0], 1, a[1], a[2]); }},
        {"conv2d", [](const Args& a) { return tg::conv2d(a[0], a[1]); }},
        {"to_float32", [](const Args& a) { return a[0].to(tg::kFloat32); }},
        {"to_bool", [](const Args& a) { return a[0].to(tg::kBool); }},
        {"to_float64", [](const Args& a) { return a[0].to(tg::kFloat64); }},
    };
    return table;
}

tg::DType dtype_named(const std::string& name) {
    for (tg::DType t : {tg::kFloat32, tg::kFloat64, tg::kInt64, tg::kInt32, tg::kBool})
        if (name == tg::dtype_name(t)) return t;
    throw std::runtime_error("unknown dtype " + name);
}

tg::Shape read_shape(std::istream& in) {
    std::size_t ndim = 0;
    in >> ndim;
    std::vector<int64_t> dims(ndim);
    for (auto& s : dims) in >> s;
    return tg::Shape(dims);
}

std::vector<std::string> read_values(std::istream& in) {
    std::size_t n = 0;
    in >> n;
    std::vector<std::string> values(n);
    for (auto& v : values) in >> v;
    return values;
}

// An input as the reference gives it: the base tensor (a leaf, requiring grad when floating) and
// the view the op sees.
struct Input {
    Tensor base, view;
};

Input read_input(std::istream& in) {
    std::string dtype_text, view;
    in >> dtype_text >> view;
    const tg::DType dtype = dtype_named(dtype_text);
    const tg::Shape shape = read_shape(in);
    const std::vector<std::string> text = read_values(in);
    Tensor base;
    if (tg::is_floating_point(dtype)) {
        std::vector<double> v;
        for (const auto& t : text) v.push_back(std::strtod(t.c_str(), nullptr));
        base = tg::from_vector(v, shape, {.dtype = dtype});
        base.requires_grad_(true);
    } else {
        std::vector<int64_t> v;
        for (const auto& t : text) v.push_back(std::stoll(t));
        base = tg::from_vector(v, shape, {.dtype = dtype});
    }
    Tensor seen = base;
    if (view == "t") seen = base.transpose(-2, -1);
    else if (view == "step") seen = base.slice(0, 0, base.size(0), 2);
    else if (view.rfind("expand:", 0) == 0) {
        tg::Shape to;
        std::stringstream dims(view.substr(7));
        for (std::string d; std::getline(dims, d, 'x');) to.push_back(std::stoll(d));
        seen = base.expand(to);
    }
    return {base, seen};
}

// w: 1, 1.5, 2, 1, ... over the elements (shifted by `shift`), as make_reference.py's weights().
Tensor weights(const tg::Shape& shape, tg::DType dtype, int shift = 0) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<double> w(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = 1.0 + static_cast<double>((i + shift) % 3) * 0.5;
    return tg::from_vector(w, shape, {.dtype = dtype});
}

// The differences kept on purpose, by case name, with the reason.
const std::map<std::string, std::string>& accepted() {
    static const std::map<std::string, std::string> why = {
        // PyTorch's own quirks, not followed
        {"var/0d", "PyTorch's var backward of one element gives inf (2/0 times x - mean = 0 is NaN); [1] and [1,1] raise a shape error in its backward"},
        {"var0/0d", "as var/0d"},
        {"var-1k/0d", "as var/0d"},
        {"max/zeros", "PyTorch's vectorised max of +0 and -0 returns -0; tapegrad the first of the ties, +0"},
        {"min/zeros", "as max/zeros"},
        {"pow/f32-f64", "PyTorch takes log of the float32 base in float32 for the float64 exponent's gradient; tapegrad in float64"},
        // second derivatives at singular points
        {"std/zeros", "std's second derivative where std is 0: PyTorch 0, tapegrad NaN (0 times the infinite derivative of sqrt)"},
        {"div/f32-zero-div", "the second derivative of a / b at b = 0 in b: PyTorch NaN, tapegrad inf"},
        {"l1_loss/plain", "the sign of the zero second derivative of l1 in the target: PyTorch -0, tapegrad +0"},
        {"l1_loss/f32", "as l1_loss/plain"},
        {"l1_loss/t", "as l1_loss/plain"},
        {"l1_loss/0d", "as l1_loss/plain"},
        {"l1_loss/nan", "as l1_loss/plain"},
        {"l1_loss/f32-f64", "as l1_loss/plain"},
        {"l1_loss/bend", "as l1_loss/plain"},
        {"cross_entropy/ignore", "the sign of the zero second derivative at an ignored row: PyTorch +0, tapegrad -0"},
        {"cross_entropy/all-ignored", "as cross_entropy/ignore"},
        {"cross_entropy_smooth/ignore", "as cross_entropy/ignore"},
        {"cross_entropy_smooth/all-ignored", "as cross_entropy/ignore"},
        {"index_select0/0d-x", "PyTorch's index_select of a 0-d tensor returns it 0-d whatever the index's length; tapegrad refuses"},
        {"index_select-1/0d-x", "as index_select0/0d-x"},
        // tapegrad's documented extensions and refusals
        {"cross_entropy/int32-labels", "int32 class labels are taken as int64 ones (tests/test_int_dtype.cpp); PyTorch 1.13 wants int64"},
        {"cross_entropy_smooth/int32-labels", "as cross_entropy/int32-labels"},
        {"cross_entropy_sum/int32-labels", "as cross_entropy/int32-labels"},
        {"nll_loss/int32-labels", "as cross_entropy/int32-labels"},
        {"masked_fill/int-mask", "the mask must be bool (PyTorch 1.13 still reads an integer mask, deprecated)"},
        {"avg_pool2d/int", "avg_pool2d refuses integers (PyTorch truncates the integer average)"},
        {"pad/bool", "pad refuses bool tensors (PyTorch pads them with False)"},
        {"conv2d/int", "conv2d refuses integers (PyTorch's slow path convolves int64)"},
        // documented refusals (ops/detail/loss.hpp): PyTorch broadcasts a target of another shape with a
        // warning that the result is likely wrong
        {"mse_loss/bcast", "a target of another shape is refused"},
        {"mse_loss_sum/bcast", "a target of another shape is refused"},
        {"l1_loss/bcast", "a target of another shape is refused"},
        {"l1_loss_none/bcast", "a target of another shape is refused"},
        {"smooth_l1_loss/bcast", "a target of another shape is refused"},
        {"huber_loss/bcast", "a target of another shape is refused"},
        {"kl_div/bcast", "a target of another shape is refused"},
        // PyTorch's result dtypes here follow no rule tapegrad could state (huber_loss of float32 and
        // float64 is float32, of float64 and float32 float64; binary_cross_entropy_with_logits the
        // reverse): tapegrad asks for one dtype
        {"huber_loss/f32-f64", "mixed dtypes refused"},
        {"huber_loss/int-target", "mixed dtypes refused"},
        {"bce_logits/f32-f64", "mixed dtypes refused"},
    };
    return why;
}

// Where `got` differs from the reference `want` (written by make_reference.py): floats within a
// relative 1e-5 (float32) or 1e-10 (float64), NaN for NaN, inf for inf, and the sign of an
// exact zero; integers and bools exactly. float32 second derivatives get 1e-4: at a cancellation
// (gelu's tanh form at 3.5) two float32 formulas for one derivative part by more than 1e-5.
std::string compare(const Tensor& got_in, tg::DType dtype, const std::vector<std::string>& want, double float32_rtol = 1e-5) {
    const Tensor got = got_in.detach().contiguous();
    if (got.numel() != static_cast<int64_t>(want.size()))
        return "has " + std::to_string(got.numel()) + " elements, PyTorch " + std::to_string(want.size());
    if (!tg::is_floating_point(dtype)) {
        const Tensor as_int = got.to(tg::kInt64).contiguous();
        for (std::size_t i = 0; i < want.size(); ++i)
            if (as_int.data<int64_t>()[i] != std::stoll(want[i]))
                return "element " + std::to_string(i) + " is " + std::to_string(as_int.data<int64_t>()[i]) + ", PyTorch " + want[i];
        return "";
    }
    const Tensor as_double = got.to(tg::kFloat64).contiguous();
    const double rtol = dtype == tg::kFloat32 ? float32_rtol : 1e-10, atol = dtype == tg::kFloat32 ? 1e-6 : 1e-12;
    std::ostringstream text;  // the first few elements that differ
    for (std::size_t i = 0, shown = 0; i < want.size() && shown < 4; ++i) {
        const double g = as_double.data<double>()[i], w = std::strtod(want[i].c_str(), nullptr);
        bool same = std::isnan(w) ? std::isnan(g) : std::isinf(w) ? g == w : std::abs(g - w) <= atol + rtol * std::abs(w);
        if (same && w == 0 && g == 0) same = std::signbit(g) == std::signbit(w);
        if (!same) {
            text << (shown++ ? "; " : "") << "element " << i << " is " << std::setprecision(17) << g << ", PyTorch " << w;
        }
    }
    return text.str();
}

// Runs one case; returns what differs from PyTorch ("" when nothing does).
std::string run_case(std::istream& in, const std::string& op_name, std::size_t n_inputs) {
    std::vector<Input> inputs;
    for (std::size_t i = 0; i < n_inputs; ++i) {
        std::string tag;
        in >> tag;
        inputs.push_back(read_input(in));
    }
    std::string tag;
    in >> tag;
    const bool raises = tag == "raises";
    std::string want_dtype;
    tg::Shape want_shape;
    std::vector<std::string> want_values;
    if (!raises) {
        in >> want_dtype;
        want_shape = read_shape(in);
        want_values = read_values(in);
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> derivatives;  // ("grad 0", values)
    for (in >> tag; tag != "end"; in >> tag) {
        std::size_t k = 0;
        in >> k;
        derivatives.emplace_back(tag + " " + std::to_string(k), read_values(in));
    }
    const auto found = ops().find(op_name);
    if (found == ops().end()) return "no op of that name in the test's table";
    Args args;
    for (const Input& i : inputs) args.push_back(i.view);
    Tensor y;
    try {
        y = found->second(args);
    } catch (const std::exception& e) {
        return raises ? "" : std::string("raises where PyTorch computes: ") + e.what();
    }
    if (raises) return "computes where PyTorch raises";
    if (tg::dtype_name(y.dtype()) != want_dtype)
        return std::string("gives ") + tg::dtype_name(y.dtype()) + ", PyTorch " + want_dtype;
    if (y.shape() != want_shape) return "gives shape " + tg::to_string(y.shape()) + ", PyTorch " + tg::to_string(want_shape);
    if (std::string d = compare(y, y.dtype(), want_values); !d.empty()) return "value: " + d;
    if (derivatives.empty()) return "";
    std::vector<std::size_t> floating;
    std::vector<Tensor> bases;
    for (std::size_t k = 0; k < inputs.size(); ++k)
        if (inputs[k].base.requires_grad()) {
            floating.push_back(k);
            bases.push_back(inputs[k].base);
        }
    const bool second = derivatives.back().first.rfind("gradgrad", 0) == 0;
    std::vector<Tensor> grads;
    try {
        grads = tg::grad({(y * weights(y.shape(), y.dtype())).sum()}, bases, {}, std::nullopt, second, true);
    } catch (const std::exception& e) {
        return std::string("backward raises: ") + e.what();
    }
    std::vector<Tensor> gradgrads;
    if (second) {
        Tensor total;
        for (std::size_t j = 0; j < grads.size(); ++j) {
            if (!grads[j].defined() || !grads[j].requires_grad()) continue;
            const Tensor part = (grads[j] * weights(bases[j].shape(), bases[j].dtype(), 1)).sum();
            total = total.defined() ? total + part : part;
        }
        try {
            if (total.defined()) gradgrads = tg::grad({total}, bases, {}, std::nullopt, false, true);
        } catch (const std::exception& e) {
            return std::string("second backward raises: ") + e.what();
        }
    }
    for (const auto& [what, values] : derivatives) {
        const bool is_second = what.rfind("gradgrad", 0) == 0;
        const std::size_t k = std::stoul(what.substr(what.find(' ') + 1));
        const std::size_t j = static_cast<std::size_t>(std::find(floating.begin(), floating.end(), k) - floating.begin());
        const std::vector<Tensor>& list = is_second ? gradgrads : grads;
        const Tensor g = j < list.size() && list[j].defined() ? list[j] : tg::zeros_like(bases[j]);
        if (g.shape() != bases[j].shape()) return what + " has shape " + tg::to_string(g.shape());
        if (std::string d = compare(g, bases[j].dtype(), values, is_second ? 1e-4 : 1e-5); !d.empty()) return what + ": " + d;
    }
    return "";
}

// Runs every case of the reference; returns the differences not accepted, and checks that every
// accepted one is still there.
std::vector<std::string> differences_from_pytorch() {
    std::ifstream in(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/differential/reference.txt");
    REQUIRE(in.good());
    int cases = 0, kept = 0;
    std::vector<std::string> differences;
    for (std::string tag; in >> tag;) {
        REQUIRE(tag == "case");
        std::string name, op;
        std::size_t n_inputs = 0;
        in >> name >> op >> n_inputs;
        ++cases;
        const std::string d = run_case(in, op, n_inputs);
        if (d.empty()) continue;
        if (accepted().count(name)) ++kept;
        else differences.push_back(name + ": " + d);
    }
    CHECK(cases > 1000);
    CHECK(kept == static_cast<int>(accepted().size()));  // each kept difference is still there: a fixed one leaves the list
    return differences;
}

}  // namespace

TEST_CASE("every op of the differential reference gives what PyTorch 1.13 gives, or raises where it raises") {
    const std::vector<std::string> differences = differences_from_pytorch();
    for (const std::string& d : differences) MESSAGE(d);
    CHECK(differences.empty());
}

TEST_CASE("the reference kernels agree with PyTorch 1.13 on the differential reference too") {
    const tg::ReferenceKernelsGuard reference;
    const std::vector<std::string> differences = differences_from_pytorch();
    for (const std::string& d : differences) MESSAGE(d);
    CHECK(differences.empty());
}

TEST_CASE("l1_loss keeps x - t, so its input and target may be written in place before the backward; mse_loss refuses, as PyTorch") {
    // PyTorch's side: tests/differential/inplace_pytorch.py.
    for (const std::string written : {"target", "input"}) {
        CAPTURE(written);
        const Tensor leaf = tg::tensor({0.3, 0.6, 0.2}, {.requires_grad = true});
        Tensor x = leaf * 1.0;
        Tensor t = tg::tensor({0.5, 0.1, 0.4});
        const Tensor l1 = tg::l1_loss(x, t);
        (written == "target" ? t : x).add_(0.01);
        l1.backward();
        const std::vector<float> want = {-0.3333333432674408f, 0.3333333432674408f, -0.3333333432674408f};
        CHECK(leaf.grad().to_vector<float>() == want);

        const Tensor leaf2 = tg::tensor({0.3, 0.6, 0.2}, {.requires_grad = true});
        Tensor x2 = leaf2 * 1.0;
        Tensor t2 = tg::tensor({0.5, 0.1, 0.4});
        const Tensor mse = tg::mse_loss(x2, t2);
        (written == "target" ? t2 : x2).add_(0.01);
        CHECK_THROWS_WITH(mse.backward(), doctest::Contains("modified by an in-place operation"));
    }
}

TEST_CASE("kl_div keeps its target and not its input: a write into the input before the backward passes, into the target is refused, as PyTorch") {
    // PyTorch's side: tests/differential/inplace_pytorch.py.
    const Tensor leaf = tg::tensor({0.3, 0.6, 0.2}, {.requires_grad = true});
    Tensor x = leaf * 1.0;
    const Tensor loss = tg::kl_div(x, tg::tensor({0.5, 0.1, 0.4}));
    x.add_(0.01);
    loss.backward();
    CHECK(leaf.grad().to_vector<float>() == std::vector<float>{-0.1666666716337204f, -0.03333333507180214f, -0.13333334028720856f});

    Tensor t = tg::tensor({0.5, 0.1, 0.4});
    const Tensor refused = tg::kl_div(tg::tensor({0.3, 0.6, 0.2}, {.requires_grad = true}) * 1.0, t);
    t.add_(0.01);
    CHECK_THROWS_WITH(refused.backward(), doctest::Contains("modified by an in-place operation"));
}
