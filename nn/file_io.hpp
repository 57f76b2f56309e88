#pragma once
// Whole-file reads and all-or-nothing writes for nn's file formats (checkpoints, IDX, learning
// curves). Every error is a std::runtime_error that starts with "<who>: " (the public function
// the caller ran, e.g. "load_checkpoint") and names the path and the reason (strerror).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/shape.hpp"

namespace tapegrad::nn::detail {

// The bytes of the regular file at `path`. A directory, a device or a pipe, a missing or
// unreadable file, and a file larger than `max_bytes` (described as `limit_text`, "1 GiB") are
// refused before anything is read.
std::vector<uint8_t> read_whole_file(const std::string& who, const std::string& path, std::size_t max_bytes,
                                     const std::string& limit_text);

// Replaces the file at `path` with `bytes`: they go to a new temporary file next to it, which is
// flushed to disk and renamed over `path`. On any failure the temporary is removed and `path` is
// as it was (absent, or its old content); a `path` that is a directory is refused first.
void write_file_atomically(const std::string& who, const std::string& path, std::string_view bytes);

// Why a shape read from a file cannot be a tensor's, or "" when it can: the tensors' own limit,
// every dimension in [0, 2^40] and their product (counting empty dimensions as 1, since an empty
// tensor's strides are still the products of its other dimensions: [0, 2^32, 2^32] would
// overflow them) at most 2^40. The caller checks the rank.
std::string shape_problem(const Shape& shape);

}  // namespace tapegrad::nn::detail
