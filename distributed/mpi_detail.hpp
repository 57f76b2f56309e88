#pragma once
// What the .cpp files of distributed/ share about MPI; never included by a public header.
// MPI's default error handler (MPI_ERRORS_ARE_FATAL) stays in place: a failing MPI call ends the
// whole job with MPI's message, it never leaves a rank waiting.
#include <mpi.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/tensor.hpp"

namespace tapegrad::distributed::detail {

inline MPI_Datatype mpi_type(DType dtype) { return dtype == kFloat32 ? MPI_FLOAT : MPI_DOUBLE; }

// MPI counts are ints: a larger message is refused here rather than truncated.
inline int mpi_count(int64_t n, const char* what) {
    if (n < 0 || n > INT_MAX)
        throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) +
                                    " elements do not fit one MPI message (at most 2^31-1); use smaller buckets");
    return static_cast<int>(n);
}

}  // namespace tapegrad::distributed::detail
