#pragma once
// What every oneDNN kernel here shares: the CPU engine and a stream per thread, scratchpads from
// the caching allocator, built primitives with their scratchpad, and a per-shape primitive cache.
// Included by the oneDNN kernels' .cpp files only.
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "engine/allocator.hpp"

namespace tapegrad::kernels::onednn {

inline dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// CPU streams are cheap; one per thread means no two threads ever share one.
inline dnnl::stream& cpu_stream() {
    thread_local dnnl::stream stream(cpu_engine());
    return stream;
}

// Scratchpads, blocked weights and converted operands come from the caching allocator, not from
// oneDNN's own malloc: fresh pages cost tens of microseconds each here (docs/measured.md).
class Buffer {
public:
    explicit Buffer(std::size_t bytes) : bytes_(bytes), ptr_(bytes ? allocator().allocate(bytes) : nullptr) {}
    ~Buffer() {
        if (ptr_) allocator().deallocate(ptr_, bytes_);
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    void* get() const { return ptr_; }

private:
    std::size_t bytes_;
    void* ptr_;
};

inline dnnl::primitive_attr user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

// A built primitive and the scratchpad it asks for at each run.
struct Step {
    dnnl::primitive prim;
    dnnl::memory::desc scratchpad;

    void run(std::unordered_map<int, dnnl::memory> args) const {
        Buffer scratch(scratchpad.get_size());
        if (scratch.get()) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad, cpu_engine(), scratch.get()));
        prim.execute(cpu_stream(), args);
        cpu_stream().wait();
    }
};

inline Step make_reorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
    const dnnl::reorder::primitive_desc pd(cpu_engine(), from, cpu_engine(), to, user_scratchpad());
    return {dnnl::reorder(pd), pd.scratchpad_desc()};
}

// Entries are built under the lock (once per shape, so contention does not matter) and never
// erased, so references to them stay valid while other threads insert. The key holds every number
// a primitive depends on, the thread count included: oneDNN splits the work across threads once,
// when it builds a primitive, and every run of it then uses that many threads.
template <class Key, class Entry>
class PrimitiveCache {
public:
    template <class Make>
    const Entry& get(const Key& key, Make make) {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(key);
        if (it == entries_.end()) it = entries_.emplace(key, std::make_unique<Entry>(make())).first;
        return *it->second;
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }

private:
    mutable std::mutex mutex_;
    std::map<Key, std::unique_ptr<Entry>> entries_;
};

// One cache per entry type. The engine is made first, so that at exit the cached primitives are
// destroyed before it.
template <class Key, class Entry>
PrimitiveCache<Key, Entry>& cache() {
    cpu_engine();
    static PrimitiveCache<Key, Entry> instance;
    return instance;
}

}  // namespace tapegrad::kernels::onednn
