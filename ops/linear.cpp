#include "ops/linear.hpp"

#include <array>
#include <type_traits>

#include "engine/autograd.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"
#include "ops/detail/autocast.hpp"
#include "ops/detail/op.hpp"
#include "ops/kernels/gemm.hpp"
#include "ops/kernels/integer_gemm.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {

// The rows of t seen as a matrix [rows, last dim]: the product of all but the last dim, which a
// division numel / last would get wrong (by zero) when the last dim is empty.
int64_t leading_rows(const Tensor& t) {
    int64_t rows = 1;
    for (std::size_t d = 0; d + 1 < t.dim(); ++d) rows *= t.shape()[d];
    return rows;
}

// A matrix operand as the GEMM seam takes it: the last two dims of t, read either directly or,
// when t is a transposed view (strides swapped), through the transpose flag, without a copy.
struct MatrixView {
    Tensor t;    // keeps the storage alive; the copy when the view could not be used as is
    bool trans;  // stored as the transpose of the logical [rows, cols]
    int64_t ld;
};

MatrixView matrix_view(const Tensor& t) {
    const std::size_t r = t.dim() - 2, c = t.dim() - 1;
    const int64_t rows = t.shape()[r], cols = t.shape()[c];
    const int64_t sr = t.strides()[r], sc = t.strides()[c];
    if ((cols == 1 || sc == 1) && (rows == 1 || sr >= cols) && sr > 0) return {t, false, rows == 1 ? cols : sr};
    if ((rows == 1 || sr == 1) && (cols == 1 || sc >= rows) && sc > 0) return {t, true, cols == 1 ? rows : sc};
    Tensor dense = empty(t.shape(), {.dtype = t.dtype()});
    copy_into(dense, t);
    return {dense, false, cols};
}

// out[batch..., M, N] = op(a) op(b), op = transpose of the last two dims when the flag is set. The
// batch dims broadcast; the output is a new row-major tensor. Under Precision::BFloat16 the products
// run on the bf16 GEMM (float32 sums, not rounded); the reference path's operands come rounded.
// int64 and int32 operands take the exact integer loop (bool is refused before).
Tensor batched_gemm(Kernels kernels, Precision precision, const Tensor& a, bool ta, const Tensor& b, bool tb) {
    const MatrixView va = matrix_view(a), vb = matrix_view(b);
    const std::size_t ra = a.dim(), rb = b.dim();
    const int64_t M = a.shape()[ra - (ta ? 1 : 2)], K = a.shape()[ra - (ta ? 2 : 1)];
    const int64_t N = b.shape()[rb - (tb ? 2 : 1)];
    const Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
    const Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
    Shape out_shape = batch;
    out_shape.push_back(M);
    out_shape.push_back(N);
    Tensor out = empty(out_shape, {.dtype = a.dtype()});
    const Strides sa = broadcast_strides(batch_a, Strides(va.t.strides().begin(), va.t.strides().end() - 2), batch);
    const Strides sb = broadcast_strides(batch_b, Strides(vb.t.strides().begin(), vb.t.strides().end() - 2), batch);
    dispatch_all(a.dtype(), [&]<class T>() {
        if constexpr (!std::is_same_v<T, bool>) {  // refused by the policy before
            const T* ap = va.t.template data<T>();
            const T* bp = vb.t.template data<T>();
            T* op = out.data<T>();
            auto product = [&](bool ta_, bool tb_, int64_t m, const T* a_, int64_t lda, const T* b_, int64_t ldb, T* c) {
                if constexpr (std::is_integral_v<T>) {
                    kernels::integer_gemm(ta_, tb_, m, N, K, a_, lda, b_, ldb, c, N);
                } else {
                    if constexpr (std::is_same_v<T, float>)
                        if (precision == Precision::BFloat16) return kernels::gemm_bf16(ta_, tb_, m, N, K, a_, lda, b_, ldb, c, N);
                    kernels::gemm(kernels, ta_, tb_, m, N, K, T(1), a_, lda, b_, ldb, T(0), c, N);
                }
            };
            // A row-major batch of A times one B is one taller GEMM: [batch * M, K] x [K, N].
            if (rb == 2 && ra > 2 && !ta && va.t.is_contiguous()) {
                product(false, vb.trans != tb, leading_rows(a), ap, K, bp, vb.ld, op);
                return;
            }
            int64_t index = 0;
            // One GEMM per batch entry; dnnl_sgemm parallelises inside each.
            for_each_run<2>(batch, {sa, sb}, [&](auto off, int64_t n, auto st) {
                for (int64_t i = 0; i < n; ++i, ++index)
                    product(va.trans != ta, vb.trans != tb, M, ap + off[0] + i * st[0], va.ld, bp + off[1] + i * st[1], vb.ld,
                            op + index * M * N);
            });
        }
    });
    return out;
}

void check_operands(const Tensor& a, const Tensor& b) {
    if (!a.defined() || !b.defined()) throw std::invalid_argument("matmul: an operand is undefined");
    if (a.dtype() != b.dtype())
        throw std::invalid_argument("matmul: operands " + describe(a) + " and " + describe(b) +
                                    " have different dtypes; convert one with .to()");
    if (a.dim() == 0 || b.dim() == 0)
        throw std::invalid_argument("matmul: both operands need at least 1 dimension, got " + to_string(a.shape()) +
                                    " and " + to_string(b.shape()) + "; multiply by a scalar with mul");
    const int64_t ka = a.shape()[a.dim() - 1], kb = b.shape()[b.dim() == 1 ? 0 : b.dim() - 2];
    if (ka != kb)
        throw std::invalid_argument("matmul: inner dimensions differ: " + to_string(a.shape()) + " has " +
                                    std::to_string(ka) + " columns but " + to_string(b.shape()) + " has " +
                                    std::to_string(kb) + " rows");
}

// An autocast product (ops/autocast.hpp): op(a) op(b) with both operands and the result rounded to
// bfloat16, or the plain product under Precision::Float32.
Tensor product(Kernels kernels, Precision p, const Tensor& a, bool ta, const Tensor& b, bool tb) {
    return detail::autocast_output(p, batched_gemm(kernels, p, detail::autocast_input(p, a), ta, detail::autocast_input(p, b), tb));
}

// C[.., M, N] = A[.., M, K] B[.., K, N]: dA = dC B^T [.., M, K], dB = A^T dC [.., K, N]; the
// engine sums broadcast batch dims down. int64 and int32 products are exact and, as in PyTorch,
// without gradient (an integer tensor never requires grad); bool is refused, as PyTorch does.
struct Matmul {
    static constexpr const char* name = "matmul";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Matrix products",
        .op = "matmul",
        .forward = "C = A B",
        .gradient = "dA = g Bᵀ, dB = Aᵀ g (batch dims summed where broadcast)",
        .shapes = "A [.., M, K], B [.., K, N], C [.., M, N]; batch dims broadcast; a 1-D A is [1,K] and a 1-D B is "
                  "[K,1], that dim dropped from C"};
    static constexpr detail::DTypes dtypes = detail::DTypes::KeepIntegers;
    Precision precision = Precision::Float32;  // from the autocast guard at the call, for both passes
    SavedTensor a{}, b{};   // each only when the other operand needs its gradient
    bool shared_b = false;  // one B [K, N] for a batch of A: dB is one GEMM over the stacked rows

    Tensor forward(const detail::OpContext& ctx, const Tensor& a_in, const Tensor& b_in) {
        Tensor out = product(ctx.kernels, precision, a_in, false, b_in, false);
        // out [.., M, N] took K multiply-adds per element
        if (ctx.scope.counting_flops())
            ctx.scope.set_flops(2.0 * static_cast<double>(out.numel()) * static_cast<double>(a_in.shape().back()));
        if (ctx.recording) {
            if (b_in.requires_grad()) a = SavedTensor(a_in);
            if (a_in.requires_grad()) b = SavedTensor(b_in);
            shared_b = b_in.dim() == 2 && a_in.dim() > 2;
        }
        return out;
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const detail::PrecisionGuard autocast(precision);
        Tensor da, db;
        if (needs[0]) da = matmul(g, b.unpack().transpose(-2, -1));
        if (needs[1]) db = matmul(a.unpack().transpose(-2, -1), g);
        return {da, db};
    }
    std::vector<Tensor> fused_backward(Kernels choice, const Tensor& g, const GradMask& needs) const {
        Tensor da, db;
        if (needs[0]) da = product(choice, precision, g, false, b.unpack(), true);
        if (needs[1]) {
            const Tensor& av = a.unpack();
            if (shared_b && av.is_contiguous() && g.is_contiguous()) {
                const int64_t K = av.shape().back(), N = g.shape().back();
                db = product(choice, precision, av.reshape({leading_rows(av), K}), true, g.reshape({leading_rows(g), N}), false);
            } else {
                db = product(choice, precision, av, true, g, false);
            }
        }
        return {da, db};
    }
    std::vector<SavedField> saved_state() const {
        return detail::with_precision({detail::saved("a", a), detail::saved("b", b), detail::saved("shared_b", shared_b)},
                                      precision);
    }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, SourceLocation loc) {
    check_operands(a, b);
    detail::check_op_inputs("matmul", detail::DTypes::KeepIntegers, std::array<const Tensor*, 2>{&a, &b});
    // A vector operand, as in PyTorch: on the left a row [1,K], on the right a column [K,1]; the
    // added dimension is removed from the result (two vectors give their dot product, 0-D).
    if (a.dim() == 1 || b.dim() == 1) {
        Tensor out = matmul(a.dim() == 1 ? unsqueeze(a, 0) : a, b.dim() == 1 ? unsqueeze(b, 1) : b, loc);
        if (b.dim() == 1) out = squeeze(out, -1);
        if (a.dim() == 1) out = squeeze(out, b.dim() == 1 ? -1 : -2);
        return out;
    }
    {
        const Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
        broadcast_shapes(ba, bb, "matmul (batch dimensions)");
    }
    return detail::run_op(Matmul{.precision = detail::autocast_precision(a.dtype(), choose_kernels(a.dtype()))}, loc, a, b);
}

namespace {

// db[j] = sum_i g[i, j] for a row-major g [rows, cols]; float64 accumulation keeps it exact enough
// for both dtypes.
Tensor column_sum(const Tensor& g) {
    const int64_t rows = g.shape()[0], cols = g.shape()[1];
    Tensor out = empty({cols}, {.dtype = g.dtype()});
    dispatch(g.dtype(), [&]<class T>() {
        const T* gp = g.data<T>();
        std::vector<double> acc(static_cast<std::size_t>(cols), 0.0);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) acc[j] += gp[i * cols + j];
        T* op = out.data<T>();
        for (int64_t j = 0; j < cols; ++j) op[j] = static_cast<T>(acc[j]);
    });
    return out;
}

// y[rows, out] = x[rows, in] W^T + b: dx = g W [rows, in], dW = g^T x [out, in], db = sum_rows g [out]
struct Linear {
    static constexpr const char* name = "linear";
    static constexpr detail::DerivativeDoc doc = {
        .section = "Matrix products",
        .op = "linear",
        .forward = "y = x Wᵀ + b",
        .gradient = "dx = g W, dW = gᵀ x, db = Σ_rows g",
        .shapes = "x [.., in] (rows = product of leading dims), W [out, in], b [out], y [.., out]"};
    static constexpr detail::DTypes dtypes = detail::DTypes::Floating;
    static constexpr std::size_t required_inputs = 2;  // the bias is optional
    Precision precision = Precision::Float32;  // from the autocast guard at the call, for both passes
    // x itself is saved (with its history, for create_graph); the backward makes it [rows, in] again.
    SavedTensor input{}, weight{};  // each only when the other needs its gradient
    Shape input_shape{};

    Tensor forward(const detail::OpContext& ctx, const Tensor& x, const Tensor& w, const Tensor& bias) {
        const int64_t in = w.shape()[1], out_features = w.shape()[0];
        // [..., in] -> [rows, in]: a view for row-major inputs; 2-D transposed views pass straight on.
        const Tensor x2 = x.dim() == 2 ? x.detach() : x.detach().reshape({leading_rows(x), in});
        const Precision p = precision;
        // [rows, in] x [in, out]; under autocast rounded once the bias is in, as PyTorch's addmm does
        Tensor y = batched_gemm(ctx.kernels, p, detail::autocast_input(p, x2), false, detail::autocast_input(p, w.detach()), true);
        if (ctx.scope.counting_flops()) ctx.scope.set_flops(2.0 * static_cast<double>(y.numel()) * static_cast<double>(in));
        if (bias.defined()) {
            dispatch(y.dtype(), [&]<class T>() {
                const Tensor rounded = detail::bfloat16_values(p, bias);
                const Tensor bc = rounded.is_contiguous() ? rounded : rounded.detach().contiguous();
                const T* bp = bc.data<T>();
                T* yp = y.data<T>();
                const int64_t rows = y.shape()[0];
                for (int64_t i = 0; i < rows; ++i)
                    for (int64_t j = 0; j < out_features; ++j) yp[i * out_features + j] += bp[j];
            });
        }
        Shape out_shape = x.shape();
        out_shape[out_shape.size() - 1] = out_features;
        if (ctx.recording) {
            if (w.requires_grad()) input = SavedTensor(x);
            if (x.requires_grad()) weight = SavedTensor(w);
            input_shape = x.shape();
        }
        return detail::autocast_output(p, y).detach().reshape(out_shape);
    }
    std::vector<Tensor> backward(const Tensor& g, const GradMask& needs) const {
        const detail::PrecisionGuard autocast(precision);
        const int64_t in = input_shape.back(), out_features = g.shape().back();
        std::vector<Tensor> grads(3);
        const Tensor g2 = g.reshape({leading_rows(g), out_features});
        if (needs[0]) grads[0] = matmul(g2, weight.unpack()).reshape(input_shape);
        if (needs[1]) grads[1] = matmul(g2.transpose(0, 1), input.unpack().reshape({leading_rows(g), in}));
        if (needs[2]) grads[2] = g2.sum({0});
        return grads;
    }
    std::vector<Tensor> fused_backward(Kernels choice, const Tensor& g, const GradMask& needs) const {
        const int64_t in = input_shape.back(), out_features = g.shape().back();
        std::vector<Tensor> grads(3);
        Tensor g2 = g.is_contiguous() ? g : g.contiguous();
        g2 = g2.reshape({leading_rows(g2), out_features});
        if (needs[0]) grads[0] = product(choice, precision, g2, false, weight.unpack(), false).reshape(input_shape);
        if (needs[1]) {
            const Tensor xv = input.unpack();
            grads[1] = product(choice, precision, g2, true, xv.dim() == 2 ? xv : xv.reshape({leading_rows(g2), in}), false);
        }
        if (needs[2]) grads[2] = detail::autocast_output(precision, column_sum(detail::bfloat16_values(precision, g2)));
        return grads;
    }
    std::vector<SavedField> saved_state() const {
        return detail::with_precision(
            {detail::saved("input", input), detail::saved("weight", weight), detail::saved("input_shape", to_string(input_shape))},
            precision);
    }
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, SourceLocation loc) {
    if (!x.defined() || !weight.defined()) throw std::invalid_argument("linear: the input or the weight is undefined");
    detail::check_op_inputs("linear", detail::DTypes::KeepIntegers, std::array<const Tensor*, 2>{&x, &weight});
    if (x.dim() < 1 || weight.dim() != 2)
        throw std::invalid_argument("linear: expects input [..., in] and weight [out, in], got input " +
                                    to_string(x.shape()) + " and weight " + to_string(weight.shape()));
    const int64_t in = weight.shape()[1], out_features = weight.shape()[0];
    if (x.shape().back() != in)
        throw std::invalid_argument("linear: input " + to_string(x.shape()) + " has " +
                                    std::to_string(x.shape().back()) + " features but weight " +
                                    to_string(weight.shape()) + " expects " + std::to_string(in));
    if (x.dtype() != weight.dtype() || (bias.defined() && bias.dtype() != x.dtype()))
        throw std::invalid_argument("linear: input " + describe(x) + ", weight " + describe(weight) +
                                    " and bias must share one dtype");
    if (bias.defined() && (bias.dim() != 1 || bias.shape()[0] != out_features))
        throw std::invalid_argument("linear: bias " + to_string(bias.shape()) + " should be [" +
                                    std::to_string(out_features) + "] for weight " + to_string(weight.shape()));
    // Integers, as PyTorch: the exact product and sum, without gradient (an integer tensor never requires it).
    if (!is_floating_point(x.dtype())) {
        const detail::OpScope scope("linear", loc);
        const Tensor y = matmul(x, weight.transpose(0, 1), loc);
        return bias.defined() ? y + bias : y;
    }
    return detail::run_op(Linear{.precision = detail::autocast_precision(x.dtype(), choose_kernels(x.dtype()))}, loc, x, weight,
                          bias);
}

Tensor mm(const Tensor& a, const Tensor& b, SourceLocation loc) {
    detail::check_op_inputs("mm", detail::DTypes::KeepIntegers, std::array<const Tensor*, 2>{&a, &b});
    if (a.dim() != 2 || b.dim() != 2)
        throw std::invalid_argument("mm: multiplies two matrices, but got " + describe(a) + " and " + describe(b) +
                                    "; use matmul for batches and vectors");
    return matmul(a, b, loc);
}

// Tensor's member spellings.
Tensor Tensor::mm(const Tensor& other) const { return tapegrad::mm(*this, other); }
Tensor Tensor::matmul(const Tensor& other) const { return tapegrad::matmul(*this, other); }

}  // namespace tapegrad
