#pragma once
// The only source of randomness in tapegrad: an explicit, seedable generator (xoshiro256**).
// Same seed, same bits, on every platform: no std:: distributions, whose output is
// implementation-defined.
//
// Every random call takes an optional generator; without one it draws from the process-wide
// default generator, seeded by manual_seed (as torch::manual_seed). A call holds the generator's
// lock for its whole draw, so threads sharing a generator never interleave inside one call, and
// a tensor's values depend only on the generator's state when the call began.
#include <array>
#include <cstdint>
#include <mutex>

namespace tapegrad {

class Generator {
public:
    explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
    // A copy has the same state (so it draws the same values) and its own lock.
    Generator(const Generator& other) : s_(other.state().s) {}
    Generator& operator=(const Generator& other) {
        if (this != &other) set_state(other.state());
        return *this;
    }
    void manual_seed(uint64_t seed);
    uint64_t next_u64();
    // Uniform in [0, 1), 53 random bits.
    double uniform();
    // Standard normal (Box-Muller).
    double normal();
    // Uniform integer in [0, n).
    uint64_t below(uint64_t n);

    struct State {
        std::array<uint64_t, 4> s{};
    };
    State state() const {
        std::lock_guard guard(mutex_);
        return {s_};
    }
    void set_state(const State& st) {
        std::lock_guard guard(mutex_);
        s_ = st.s;
    }

    // Held by a random call for its whole draw (the draw methods above do not lock, so that a
    // tensor of a million values takes the lock once).
    std::unique_lock<std::mutex> lock() const { return std::unique_lock(mutex_); }

private:
    std::array<uint64_t, 4> s_{};
    mutable std::mutex mutex_;
};

// The process-wide generator that random calls without an explicit generator draw from. Its
// initial seed is fixed (PyTorch's default, 67280421310721), so a program that never seeds is
// still reproducible run to run.
Generator& default_generator();

// Seeds the default generator, as torch::manual_seed.
void manual_seed(uint64_t seed);

}  // namespace tapegrad
