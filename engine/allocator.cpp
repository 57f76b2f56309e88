#include "engine/allocator.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace tapegrad {
namespace {

struct Pool {
    std::mutex mutex;
    std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // keyed by rounded size
    AllocatorStats stats;
    std::size_t cache_limit = std::size_t{4} << 30;
};

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
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        auto it = p.free_blocks.find(size);
        if (it != p.free_blocks.end() && !it->second.empty()) {
            void* ptr = it->second.back();
            it->second.pop_back();
            p.stats.bytes_cached -= size;
            p.stats.bytes_in_use += size;
            p.stats.peak_bytes_in_use = std::max(p.stats.peak_bytes_in_use, p.stats.bytes_in_use);
            ++p.stats.cache_hits;
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
    p.stats.bytes_in_use += size;
    p.stats.peak_bytes_in_use = std::max(p.stats.peak_bytes_in_use, p.stats.bytes_in_use);
    ++p.stats.cache_misses;
    return ptr;
}

void CachingAllocator::deallocate(void* ptr, std::size_t bytes) noexcept {
    if (ptr == nullptr) return;
    const std::size_t size = round_size(bytes);
    Pool& p = pool();
    std::unique_lock<std::mutex> lock(p.mutex);
    p.stats.bytes_in_use -= size;
    if (p.stats.bytes_cached + size > p.cache_limit) {
        lock.unlock();
        std::free(ptr);
        return;
    }
    try {
        p.free_blocks[size].push_back(ptr);
        p.stats.bytes_cached += size;
    } catch (...) {
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
    }
    for (auto& [size, ptrs] : blocks)
        for (void* ptr : ptrs) std::free(ptr);
}

AllocatorStats CachingAllocator::stats() const {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    return p.stats;
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
