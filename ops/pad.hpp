#pragma once
// Padding, as PyTorch's F.pad.
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad {

enum class PadMode {
    Constant,   // `value` outside; negative pads crop
    Reflect,    // mirror without repeating the edge (each pad < that dimension's size)
    Replicate,  // repeat the edge (the dimension must not be empty)
};

// pads = {left, right} for the last dimension, then {top, bottom} for the one before, and so on
// (PyTorch's order), at most one pair per dimension.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::Constant, double value = 0.0,
           SourceLocation loc = SourceLocation::current());

}  // namespace tapegrad
