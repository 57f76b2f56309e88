#pragma once
// The tape as a picture: Graphviz DOT of the graph behind a tensor (render with `dot -Tsvg`).
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

// One box per op with its name, output shape and dtype, what its backward saved (an op definition's
// saved state by name, tensors with their bytes and other values as text; the tensors of an op
// recorded with a closure unnamed; "saved tensors freed" after a backward without retain_graph),
// and its NameScope; one ellipse per leaf that requires grad,
// named from `names` (a module's named_parameters(): "features.0.weight") or by its shape.
// Arrows follow the forward pass, from inputs to the op that used them.
std::string to_dot(const Tensor& output, const std::vector<std::pair<std::string, Tensor>>& names = {});

}  // namespace tapegrad
