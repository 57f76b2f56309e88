#pragma once
// PyTorch lets the reductions, softmax, squeeze and transpose take dim 0 or -1 of a 0-d tensor, as
// if it were [1] (x.sum(0), x.max(-1), softmax(x, 0), x.squeeze(0) of a scalar): a reduction runs on
// x viewed as [1] along dim 0 and its result comes back 0-d, through recorded reshapes, so the
// gradient flows as through any view; squeeze and transpose give x's view unchanged.
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::detail {

// True when x is 0-d and `dims` names at least one dimension: each must then be 0 or -1, and
// anything else is refused naming the op.
inline bool is_scalar_along(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
    if (!x.defined() || x.dim() != 0 || dims.empty()) return false;
    for (int64_t d : dims)
        if (d != 0 && d != -1)
            throw std::invalid_argument(std::string(op) + ": dim " + std::to_string(d) +
                                        " is out of range for a 0-D tensor (expected 0 or -1)");
    return true;
}

}  // namespace tapegrad::detail
