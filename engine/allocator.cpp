#include "engine/allocator.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <unordered_map>
#include <vector>

#include "engine/profiler.hpp"

namespace tapegrad {
namespace {

struct Pool {
    std::mutex mutex;
    std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // keyed by rounded size
    AllocatorStats stats;
    std::size_t cache_limit = std::size_t{4} << 30;
    std::size_t window_peak = 0;
    std::atomic<bool> tracking{false};
    std::unordered_map<void*, LiveBlock> live;  // while tracking
};

// Under the pool's mutex: a block of `size` bytes was handed out.
void note_handed_out(Pool& p, void* ptr, std::size_t size, std::string* label) {
    p.stats.bytes_in_use += size;
    p.stats.bytes_allocated_total += size;
    p.stats.peak_bytes_in_use = std::max(p.stats.peak_bytes_in_use, p.stats.bytes_in_use);
    p.window_peak = std::max(p.window_peak, p.stats.bytes_in_use);
    if (label) p.live[ptr] = LiveBlock{size, std::move(*label)};
}

Pool& pool() {
    // Leaked on purpose: tensors in static objects may be freed after main returns.
    static Pool* p = new Pool;
    return *p;
}

}  // namespace

std::size_t CachingAllocator::round_size(std::size_t bytes) {
    if (bytes == 0) bytes = 1;
    const std::size_t small = 512, large = std::size_t{1} << 16;
    const std::size_t unit = bytes < (std::size_t{1} << 20) ? small : large;
    return (bytes + unit - 1) / unit * unit;
}

void* CachingAllocator::allocate(std::size_t bytes) {
    const std::size_t size = round_size(bytes);
    Pool& p = pool();
    std::optional<std::string> label;
    if (p.tracking.load(std::memory_order_relaxed)) label = detail::allocation_label();
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        auto it = p.free_blocks.find(size);
        if (it != p.free_blocks.end() && !it->second.empty()) {
            void* ptr = it->second.back();
            it->second.pop_back();
            p.stats.bytes_cached -= size;
            ++p.stats.cache_hits;
            note_handed_out(p, ptr, size, label ? &*label : nullptr);
            return ptr;
        }
    }
    void* ptr = std::aligned_alloc(kAlignment, size);
    if (ptr == nullptr) {
        // The cache may hold the memory we need: give it back and try once more.
        empty_cache();
        ptr = std::aligned_alloc(kAlignment, size);
        if (ptr == nullptr) throw std::bad_alloc();
    }
    std::lock_guard<std::mutex> lock(p.mutex);
    ++p.stats.cache_misses;
    ++p.stats.system_allocations;
    p.stats.bytes_from_system += size;
    note_handed_out(p, ptr, size, label ? &*label : nullptr);
    return ptr;
}

void CachingAllocator::deallocate(void* ptr, std::size_t bytes) noexcept {
    if (ptr == nullptr) return;
    const std::size_t size = round_size(bytes);
    Pool& p = pool();
    std::unique_lock<std::mutex> lock(p.mutex);
    p.stats.bytes_in_use -= size;
    if (!p.live.empty()) p.live.erase(ptr);
    if (p.stats.bytes_cached + size > p.cache_limit) {
        ++p.stats.system_frees;
        lock.unlock();
        std::free(ptr);
        return;
    }
    try {
        p.free_blocks[size].push_back(ptr);
        p.stats.bytes_cached += size;
    } catch (...) {
        ++p.stats.system_frees;
        lock.unlock();
        std::free(ptr);
    }
}

void CachingAllocator::empty_cache() {
    Pool& p = pool();
    std::unordered_map<std::size_t, std::vector<void*>> blocks;
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        blocks.swap(p.free_blocks);
        p.stats.bytes_cached = 0;
        for (const auto& [size, ptrs] : blocks) p.stats.system_frees += ptrs.size();
    }
    for (auto& [size, ptrs] : blocks)
        for (void* ptr : ptrs) std::free(ptr);
}

AllocatorStats CachingAllocator::stats(std::size_t largest) const {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    AllocatorStats s = p.stats;
    if (!p.live.empty() && largest > 0) {
        std::vector<const LiveBlock*> blocks;
        blocks.reserve(p.live.size());
        for (const auto& [_, b] : p.live) blocks.push_back(&b);
        const std::size_t n = std::min(largest, blocks.size());
        std::partial_sort(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(n), blocks.end(),
                          [](const LiveBlock* a, const LiveBlock* b) { return a->bytes > b->bytes; });
        for (std::size_t i = 0; i < n; ++i) s.largest_live.push_back(*blocks[i]);
    }
    return s;
}

void CachingAllocator::set_tracking(bool enabled) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    p.tracking.store(enabled, std::memory_order_relaxed);
    if (!enabled) p.live.clear();
}

bool CachingAllocator::tracking() const { return pool().tracking.load(std::memory_order_relaxed); }

std::size_t CachingAllocator::begin_peak_window() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    return std::exchange(p.window_peak, p.stats.bytes_in_use);
}

std::size_t CachingAllocator::end_peak_window(std::size_t enclosing_peak) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    const std::size_t peak = p.window_peak;
    p.window_peak = std::max(enclosing_peak, peak);
    return peak;
}

namespace {
std::string mib(std::size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}
}  // namespace

std::string AllocatorStats::summary() const {
    std::string s = "in use " + mib(bytes_in_use) + ", cached " + mib(bytes_cached) + ", peak " + mib(peak_bytes_in_use) +
                    "; " + std::to_string(cache_hits) + " cache hits, " + std::to_string(cache_misses) + " misses; " +
                    std::to_string(system_allocations) + " system allocations, " + std::to_string(system_frees) + " frees\n";
    if (largest_live.empty()) return s + "(largest live blocks: enable with tg::allocator().set_tracking(true))\n";
    s += "largest live blocks:\n";
    for (const LiveBlock& b : largest_live) s += "  " + mib(b.bytes) + "  " + b.made_by + "\n";
    return s;
}

void CachingAllocator::set_cache_limit(std::size_t bytes) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    p.cache_limit = bytes;
}

CachingAllocator& CachingAllocator::instance() {
    static CachingAllocator a;
    return a;
}

}  // namespace tapegrad
