#pragma once
// PyTorch's torch.set_printoptions for `std::cout << tensor` (engine/print.cpp), process-wide as
// PyTorch's: tg::set_printoptions({.precision = 2}). Only the fields given change, except sci_mode,
// which is set every time as PyTorch sets it (none: fixed-point or scientific chosen from the values).
// A profile ("default", "short", "full") first resets the others, as in PyTorch.
#include <cstdint>
#include <optional>
#include <string>

namespace tapegrad {

struct PrintOptions {
    std::optional<int> precision{};        // digits after the point (default 4)
    std::optional<int64_t> threshold{};    // more elements than this are summarised (default 1000)
    std::optional<int64_t> edgeitems{};    // kept at each end of a summarised dimension (default 3)
    std::optional<int64_t> linewidth{};    // characters per line (default 80)
    std::optional<std::string> profile{};  // "default", "short" (precision 2, edgeitems 2) or "full" (no summary)
    std::optional<bool> sci_mode{};        // true: scientific, false: fixed-point, none: chosen
};

void set_printoptions(const PrintOptions& options);

}  // namespace tapegrad
