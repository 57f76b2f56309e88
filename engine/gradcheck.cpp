#include "engine/gradcheck.hpp"

#include <cmath>
#include <sstream>

#include "engine/autograd.hpp"
#include "engine/generator.hpp"
#include "engine/strided.hpp"
#include "engine/tensor_math.hpp"

namespace tapegrad {
namespace {

// Memory offsets of a tensor's elements in row-major index order.
std::vector<int64_t> element_offsets(const Tensor& t) {
    std::vector<int64_t> offsets;
    offsets.reserve(static_cast<std::size_t>(t.numel()));
    for_each_run<1>(t.shape(), {t.strides()}, [&](auto off, int64_t n, auto st) {
        for (int64_t i = 0; i < n; ++i) offsets.push_back(off[0] + i * st[0]);
    });
    return offsets;
}

std::vector<double> evaluate(const DifferentiableFn& fn, const std::vector<Tensor>& inputs) {
    NoGradGuard no_grad;
    Tensor y = fn(inputs);
    return y.to_vector<double>();
}

bool close(double analytical, double numerical, const GradcheckOptions& o) {
    return std::abs(analytical - numerical) <= o.atol + o.rtol * std::abs(numerical);
}

std::string fmt(double v) {
    std::ostringstream s;
    s.precision(10);
    s << v;
    return s.str();
}

GradcheckResult fail(std::string message) { return {false, "gradcheck: " + std::move(message)}; }

}  // namespace

GradcheckResult gradcheck(const DifferentiableFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions o) {
    std::vector<std::size_t> checked;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].requires_grad()) continue;
        if (inputs[i].dtype() != kFloat64)
            throw std::invalid_argument("gradcheck: input " + std::to_string(i) + " is " + describe(inputs[i]) +
                                        "; finite differences need float64 inputs (use .to(kFloat64))");
        if (!inputs[i].is_leaf())
            throw std::invalid_argument("gradcheck: input " + std::to_string(i) + " must be a leaf tensor");
        checked.push_back(i);
    }
    if (checked.empty()) throw std::invalid_argument("gradcheck: no input requires grad, so there is nothing to check");

    Tensor y = fn(inputs);
    if (!y.defined() || y.dtype() != kFloat64)
        throw std::invalid_argument("gradcheck: the function must return a float64 tensor, got " + describe(y));
    if (!y.requires_grad()) return fail("the output does not require grad: the function does not depend on any input "
                                        "that requires grad, or it breaks the graph (detach, NoGradGuard)");
    const int64_t n_out = y.numel();
    std::vector<Tensor> wrt;
    for (std::size_t i : checked) wrt.push_back(inputs[i]);

    // Analytical vector-Jacobian product for one grad_output; undefined gradients count as zero.
    auto vjp = [&](const Tensor& u) {
        std::vector<Tensor> g = grad({y}, wrt, {u}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
        std::vector<std::vector<double>> out;
        for (std::size_t k = 0; k < g.size(); ++k)
            out.push_back(g[k].defined() ? g[k].to_vector<double>()
                                         : std::vector<double>(static_cast<std::size_t>(wrt[k].numel()), 0.0));
        return out;
    };

    if (o.fast_mode) {
        Generator gen(o.seed);
        Tensor u = randn(y.shape(), gen, {.dtype = kFloat64});
        const std::vector<double> uv = u.to_vector<double>();
        const auto analytical_rows = vjp(u);
        for (std::size_t k = 0; k < checked.size(); ++k) {
            const Tensor& x = inputs[checked[k]];
            const std::vector<int64_t> offsets = element_offsets(x);
            std::vector<double> v(offsets.size());
            for (double& e : v) e = gen.normal();
            double* p = x.data<double>();
            std::vector<double> saved(offsets.size());
            for (std::size_t j = 0; j < offsets.size(); ++j) saved[j] = p[offsets[j]];
            for (std::size_t j = 0; j < offsets.size(); ++j) p[offsets[j]] = saved[j] + o.eps * v[j];
            const auto plus = evaluate(fn, inputs);
            for (std::size_t j = 0; j < offsets.size(); ++j) p[offsets[j]] = saved[j] - o.eps * v[j];
            const auto minus = evaluate(fn, inputs);
            for (std::size_t j = 0; j < offsets.size(); ++j) p[offsets[j]] = saved[j];
            double numerical = 0, analytical = 0;
            for (std::size_t m = 0; m < uv.size(); ++m) numerical += uv[m] * (plus[m] - minus[m]) / (2 * o.eps);
            for (std::size_t j = 0; j < v.size(); ++j) analytical += analytical_rows[k][j] * v[j];
            if (!close(analytical, numerical, o))
                return fail("fast mode: u^T J v mismatch for input " + std::to_string(checked[k]) + " " + describe(x) +
                            ": numerical " + fmt(numerical) + ", analytical " + fmt(analytical));
        }
        return {true, ""};
    }

    // Full mode. Analytical rows: one backward per output element, with a one-hot grad_output.
    std::vector<std::vector<std::vector<double>>> analytical(checked.size());  // [input][out][in_elem]
    for (int64_t m = 0; m < n_out; ++m) {
        Tensor u = zeros(y.shape(), {.dtype = kFloat64});
        u.data<double>()[m] = 1.0;
        auto rows = vjp(u);
        for (std::size_t k = 0; k < checked.size(); ++k) analytical[k].push_back(std::move(rows[k]));
    }
    bool all_zero = true;
    for (std::size_t k = 0; k < checked.size(); ++k) {
        const Tensor& x = inputs[checked[k]];
        const std::vector<int64_t> offsets = element_offsets(x);
        double* p = x.data<double>();
        for (std::size_t j = 0; j < offsets.size(); ++j) {
            const double orig = p[offsets[j]];
            p[offsets[j]] = orig + o.eps;
            const auto plus = evaluate(fn, inputs);
            p[offsets[j]] = orig - o.eps;
            const auto minus = evaluate(fn, inputs);
            p[offsets[j]] = orig;
            for (int64_t m = 0; m < n_out; ++m) {
                const double numerical = (plus[static_cast<std::size_t>(m)] - minus[static_cast<std::size_t>(m)]) / (2 * o.eps);
                const double a = analytical[k][static_cast<std::size_t>(m)][j];
                if (numerical != 0 || a != 0) all_zero = false;
                if (!close(a, numerical, o))
                    return fail("Jacobian mismatch for input " + std::to_string(checked[k]) + " " + describe(x) +
                                " at input element " + std::to_string(j) + ", output element " + std::to_string(m) +
                                ": numerical " + fmt(numerical) + ", analytical " + fmt(a));
            }
        }
    }
    if (all_zero)
        return fail("both the numerical and the analytical Jacobian are all zero, so nothing was checked; pick inputs "
                    "where the function's gradient does not vanish");
    return {true, ""};
}

namespace {

// The tensors flattened and joined into one vector, on the tape: gradcheck checks functions with
// one output, and gradgradcheck's function returns one gradient per input. Its backward hands
// each input its slice of the gradient.
Tensor concat_flat(const std::vector<Tensor>& parts) {
    int64_t total = 0;
    for (const Tensor& t : parts) total += t.numel();
    Tensor out = empty({total}, {.dtype = kFloat64});
    std::vector<Shape> shapes;
    int64_t offset = 0;
    for (const Tensor& t : parts) {
        copy_into(as_strided(out, t.shape(), contiguous_strides(t.shape()), offset), t);
        offset += t.numel();
        shapes.push_back(t.shape());
    }
    return record("concat_flat", out, parts, [shapes](const Tensor& g_in, const GradMask&) {
        const Tensor g = g_in.is_contiguous() ? g_in : g_in.contiguous();
        std::vector<Tensor> grads;
        int64_t at = 0;
        for (const Shape& s : shapes) {
            grads.push_back(as_strided(g, s, contiguous_strides(s), at));
            at += numel_of(s);
        }
        return grads;
    });
}

}  // namespace

GradcheckResult gradgradcheck(const DifferentiableFn& fn, const std::vector<Tensor>& inputs, const Tensor& grad_output,
                              GradcheckOptions o) {
    std::vector<std::size_t> wrt_index;
    for (std::size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].requires_grad()) wrt_index.push_back(i);
    if (wrt_index.empty()) throw std::invalid_argument("gradgradcheck: no input requires grad, so there is nothing to check");
    Tensor u = grad_output;
    if (!u.defined()) {
        Tensor y;
        {
            NoGradGuard no_grad;
            y = fn(inputs);
        }
        Generator gen(o.seed + 1);
        u = randn(y.shape(), gen, {.dtype = kFloat64});
    }
    if (u.dtype() != kFloat64)
        throw std::invalid_argument("gradgradcheck: grad_output must be float64, got " + describe(u));
    u = u.detach().requires_grad_(true);
    const std::size_t n = inputs.size();
    // (inputs..., grad_output) -> the input gradients, flattened and joined, with their history.
    const DifferentiableFn vjp = [&fn, wrt_index, n](const std::vector<Tensor>& all) {
        // gradcheck evaluates its function under NoGradGuard; this one needs the graph to differentiate.
        const GradModeGuard grad_mode(true);
        const std::vector<Tensor> in(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
        const Tensor y = fn(in);
        std::vector<Tensor> wrt;
        for (std::size_t i : wrt_index) wrt.push_back(in[i]);
        std::vector<Tensor> g = grad({y}, wrt, {all[n]}, /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/true);
        for (std::size_t k = 0; k < g.size(); ++k)
            if (!g[k].defined()) g[k] = zeros(wrt[k].shape(), {.dtype = kFloat64});
        return concat_flat(g);
    };
    std::vector<Tensor> all = inputs;
    all.push_back(u);
    GradcheckResult r = gradcheck(vjp, all, o);
    if (!r.passed) r.message = "gradgradcheck (input " + std::to_string(n) + " is grad_output): " + r.message;
    return r;
}

}  // namespace tapegrad
