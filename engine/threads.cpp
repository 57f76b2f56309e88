#include "engine/threads.hpp"

#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace tapegrad {
namespace {
std::atomic<bool> g_deterministic{false};
}  // namespace

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: need at least 1 thread, got " + std::to_string(n));
    omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

void set_deterministic(bool enabled) { g_deterministic = enabled; }
bool is_deterministic() { return g_deterministic; }

int split_sum_threads() { return is_deterministic() ? 1 : get_num_threads(); }

ThreadCountGuard::ThreadCountGuard(int n) : previous_(get_num_threads()) { set_num_threads(n); }
ThreadCountGuard::~ThreadCountGuard() { set_num_threads(previous_); }

}  // namespace tapegrad
