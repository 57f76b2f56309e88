#pragma once
// A caching allocator for tensor storage. On these machines the first touch of a freshly mapped
// page costs tens of microseconds (see docs/measured.md), and glibc maps and unmaps every large buffer
// on each call. Keeping freed blocks by size and handing them out again removes that cost: after
// the first training step no new page is touched.
#include <cstddef>
#include <cstdint>

namespace tapegrad {

struct AllocatorStats {
    std::size_t bytes_in_use = 0;     // handed out and not yet returned
    std::size_t bytes_cached = 0;     // returned and kept for reuse
    std::size_t peak_bytes_in_use = 0;
    std::size_t cache_hits = 0;
    std::size_t cache_misses = 0;
};

class CachingAllocator {
public:
    // Blocks are 64-byte aligned (a cache line, and what AVX-512 loads like).
    static constexpr std::size_t kAlignment = 64;

    void* allocate(std::size_t bytes);
    void deallocate(void* ptr, std::size_t bytes) noexcept;
    // Gives every cached block back to the system.
    void empty_cache();
    AllocatorStats stats() const;
    // Blocks beyond this many cached bytes are freed instead of kept (default 4 GiB).
    void set_cache_limit(std::size_t bytes);

    // The process-wide instance. It is thread-safe: the only shared mutable state in tapegrad.
    static CachingAllocator& instance();

    // Sizes are rounded up so that slightly different requests share blocks.
    static std::size_t round_size(std::size_t bytes);
};

inline CachingAllocator& allocator() { return CachingAllocator::instance(); }

// A standard allocator over the caching allocator, for containers such as xt::uvector.
template <class T>
struct CachingStdAllocator {
    using value_type = T;
    CachingStdAllocator() = default;
    template <class U>
    CachingStdAllocator(const CachingStdAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(allocator().allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { allocator().deallocate(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const CachingStdAllocator<U>&) const noexcept { return true; }
};

}  // namespace tapegrad
