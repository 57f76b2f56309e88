#pragma once
// PyTorch's image ops (the convolutions, the pools) take one image [C,H,W] as well as a batch
// [N,C,H,W]: the image runs as a batch of one, and the result loses the batch dimension again.
#include "engine/tensor.hpp"

namespace tapegrad::detail {

inline bool unbatched(const Tensor& x) { return x.defined() && x.dim() == 3; }
inline Tensor as_batch(const Tensor& t) { return t.reshape({1, t.size(0), t.size(1), t.size(2)}); }
inline Tensor drop_batch(const Tensor& t) { return t.reshape({t.size(1), t.size(2), t.size(3)}); }

}  // namespace tapegrad::detail
