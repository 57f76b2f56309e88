#pragma once
// The number of threads tapegrad's OpenMP loops (and oneDNN, which shares the OpenMP runtime) use.
// By default the OpenMP runtime decides: OMP_NUM_THREADS when set, else one per core. The setting
// is per calling thread (OpenMP's nthreads-var): a new std::thread starts from the default.
namespace tapegrad {

// n >= 1; throws std::invalid_argument otherwise.
void set_num_threads(int n);
int get_num_threads();

// Deterministic mode (process-wide, off by default). Every op gives the same bits for the same
// inputs and the same thread count. Across thread counts all ops agree bitwise too, except where
// a library splits one sum over threads, so that the order of its additions follows the thread
// count:
// - oneDNN's conv2d backward-weights primitive splits its reduction over the batch and pixels;
// - dnnl_sgemm splits K when the output is small and K long (on AVX2, a [16,784] x [784,32]
//   matmul at 2 threads), and which shapes it splits depends on the processor's ISA.
// In deterministic mode those run on one thread (split_sum_threads() below), so training gives
// the same bits whatever set_num_threads says, at the cost of a slower conv2d backward and matmul.
void set_deterministic(bool enabled);
bool is_deterministic();

// The thread count for a library call whose result depends on how many threads share it: 1 in
// deterministic mode, get_num_threads() otherwise. The one place that decides it.
int split_sum_threads();

// Sets the calling thread's thread count for a scope, and restores it at the end.
class ThreadCountGuard {
public:
    explicit ThreadCountGuard(int n);
    ~ThreadCountGuard();
    ThreadCountGuard(const ThreadCountGuard&) = delete;
    ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

private:
    int previous_;
};

}  // namespace tapegrad
