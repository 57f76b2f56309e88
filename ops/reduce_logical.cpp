#include "ops/reduce_logical.hpp"

#include <optional>
#include <vector>

#include "ops/detail/op.hpp"
#include "ops/detail/scalar_dims.hpp"
#include "ops/kernels/mask.hpp"

namespace tapegrad {
namespace {

using detail::DTypes;
using detail::OpContext;

// x != 0 reduced by and (all) or or (any) over every dimension or one. Not differentiable.
template <bool All>
struct AnyAll {
    static constexpr const char* name = All ? "all" : "any";
    static constexpr DTypes dtypes = DTypes::KeepAll;
    std::optional<int64_t> dim;
    bool keepdim = false;
    Tensor forward(const OpContext&, const Tensor& x) {
        std::vector<bool> reduce(x.dim(), !dim);
        if (dim) reduce[normalize_axis(*dim, x.dim(), name)] = true;
        return dispatch_all(x.dtype(), [&]<class T>() { return kernels::any_or_all<T>(x, reduce, keepdim, All); });
    }
};

}  // namespace

Tensor any(const Tensor& x, SourceLocation loc) { return detail::run_op(AnyAll<false>{}, loc, x); }
Tensor all(const Tensor& x, SourceLocation loc) { return detail::run_op(AnyAll<true>{}, loc, x); }
Tensor any(const Tensor& x, int64_t dim, bool keepdim, SourceLocation loc) {
    if (detail::is_scalar_along(x, {dim}, "any")) return any(x.reshape({1}), 0, keepdim, loc).reshape({});
    return detail::run_op(AnyAll<false>{.dim = dim, .keepdim = keepdim}, loc, x);
}
Tensor all(const Tensor& x, int64_t dim, bool keepdim, SourceLocation loc) {
    if (detail::is_scalar_along(x, {dim}, "all")) return all(x.reshape({1}), 0, keepdim, loc).reshape({});
    return detail::run_op(AnyAll<true>{.dim = dim, .keepdim = keepdim}, loc, x);
}

Tensor Tensor::all() const { return tapegrad::all(*this); }
Tensor Tensor::all(int64_t dim, bool keepdim) const { return tapegrad::all(*this, dim, keepdim); }
Tensor Tensor::any() const { return tapegrad::any(*this); }
Tensor Tensor::any(int64_t dim, bool keepdim) const { return tapegrad::any(*this, dim, keepdim); }

}  // namespace tapegrad
