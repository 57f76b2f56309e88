#pragma once
// Sets the calling thread's OpenMP thread count for a scope. oneDNN and OpenBLAS's OpenMP build
// both read it at each call, so a kernel can run a library call on fewer threads (deterministic
// mode runs reductions whose split depends on the thread count on one thread).
#include "engine/threads.hpp"

namespace tapegrad::kernels {

class ThreadCountScope {
public:
    explicit ThreadCountScope(int n) : previous_(get_num_threads()) { set_num_threads(n); }
    ~ThreadCountScope() { set_num_threads(previous_); }
    ThreadCountScope(const ThreadCountScope&) = delete;
    ThreadCountScope& operator=(const ThreadCountScope&) = delete;

private:
    int previous_;
};

}  // namespace tapegrad::kernels
