#pragma once
// Tensor storage: an xtensor uvector (uninitialised, so no page is touched before a kernel writes
// it) over the caching allocator.
#include <variant>

#include <xtensor/xstorage.hpp>

#include "engine/allocator.hpp"
#include "engine/dtype.hpp"

namespace tapegrad {

struct Storage {
    template <class T>
    using Buffer = xt::uvector<T, CachingStdAllocator<T>>;

    Storage(DType dtype, std::size_t count);
    void* data();
    std::size_t count() const;

    std::variant<Buffer<float>, Buffer<double>> buffer;
};

}  // namespace tapegrad
