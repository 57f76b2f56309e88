#pragma once
// The number of threads tapegrad's OpenMP loops (and oneDNN, which shares the OpenMP runtime) use.
// By default the OpenMP runtime decides: OMP_NUM_THREADS when set, else one per core. The setting
// is per calling thread (OpenMP's nthreads-var): a new std::thread starts from the default.
namespace tapegrad {

// n >= 1; throws std::invalid_argument otherwise.
void set_num_threads(int n);
int get_num_threads();

// Deterministic mode (process-wide, off by default). Every op gives the same bits for the same
// inputs and the same thread count. Across thread counts all ops agree bitwise too, except
// conv2d's weight and bias gradients: oneDNN's backward-weights primitive splits its reduction by
// thread. In deterministic mode that primitive runs on one thread, so training gives the same
// bits whatever set_num_threads says, at the cost of a slower conv2d backward.
void set_deterministic(bool enabled);
bool is_deterministic();

}  // namespace tapegrad
