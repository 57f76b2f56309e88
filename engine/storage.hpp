#pragma once
// Tensor storage: an xtensor uvector (uninitialised, so no page is touched before a kernel writes
// it) over the caching allocator.
#include <atomic>
#include <cstdint>
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

    std::variant<Buffer<float>, Buffer<double>, Buffer<int64_t>, Buffer<int32_t>, Buffer<bool>, Buffer<BFloat16>> buffer;
    // Bumped by every in-place write to these elements, through any view or detach() of them:
    // a tensor saved for backward remembers the version it was saved at (SavedTensor).
    std::atomic<uint64_t> version{0};
};

}  // namespace tapegrad
