#pragma once
// The number of threads tapegrad's OpenMP loops (and oneDNN, which shares the OpenMP runtime) use.
// By default the OpenMP runtime decides: OMP_NUM_THREADS when set, else one per core.
namespace tapegrad {

// n >= 1; throws std::invalid_argument otherwise.
void set_num_threads(int n);
int get_num_threads();

}  // namespace tapegrad
