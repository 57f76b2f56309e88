#pragma once
// A caching allocator for tensor storage. On these machines the first touch of a freshly mapped
// page costs tens of microseconds (see docs/measured.md), and glibc maps and unmaps every large buffer
// on each call. Keeping freed blocks by size and handing them out again removes that cost: after
// the first training step no new page is touched.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tapegrad {

// A block in use, with what made it: "conv2d", "block3/linear", "backward of conv2d".
struct LiveBlock {
    std::size_t bytes = 0;
    std::string made_by;
};

struct AllocatorStats {
    std::size_t bytes_in_use = 0;     // handed out and not yet returned
    std::size_t bytes_cached = 0;     // returned and kept for reuse
    std::size_t peak_bytes_in_use = 0;
    std::size_t cache_hits = 0;    // requests served from the cache
    std::size_t cache_misses = 0;  // requests that found no cached block of their size
    std::size_t bytes_allocated_total = 0;  // every allocation so far, from the cache or fresh
    // Calls to the system's allocator (aligned_alloc, free), and the bytes asked of it. After a
    // training step's warm-up, a step that repeats the same graph asks nothing more
    // (docs/performance.md, "No allocation in the steady state").
    std::size_t system_allocations = 0;
    std::size_t system_frees = 0;
    std::size_t bytes_from_system = 0;
    // Only while tracking (CachingAllocator::set_tracking): the largest blocks in use, largest first.
    std::vector<LiveBlock> largest_live;
    // A readable summary: in use, cached, peak, hits, and the largest live blocks when tracked.
    std::string summary() const;
};

class CachingAllocator {
public:
    // Blocks are 64-byte aligned (a cache line, and what AVX-512 loads like).
    static constexpr std::size_t kAlignment = 64;

    void* allocate(std::size_t bytes);
    void deallocate(void* ptr, std::size_t bytes) noexcept;
    // Gives every cached block back to the system.
    void empty_cache();
    // `largest` bounds stats().largest_live.
    AllocatorStats stats(std::size_t largest = 10) const;
    // Tracking remembers, for every block handed out, its size and the op (and NameScope) that
    // asked for it, so that stats() can list the largest live ones. Off by default: it costs a
    // hash-map update per allocation. Blocks handed out before tracking started are not listed.
    void set_tracking(bool enabled);
    bool tracking() const;
    // The profiler's per-op peak: begin returns the enclosing window's peak and starts a window at
    // the bytes now in use; end returns the window's peak and folds it into the enclosing one.
    std::size_t begin_peak_window();
    std::size_t end_peak_window(std::size_t enclosing_peak);
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
