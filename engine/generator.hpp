#pragma once
// The only source of randomness in tapegrad: an explicit, seedable generator (xoshiro256**).
// Same seed, same bits, on every platform: no std:: distributions, whose output is
// implementation-defined.
#include <array>
#include <cstdint>

namespace tapegrad {

class Generator {
public:
    explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
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
    State state() const { return {s_}; }
    void set_state(const State& st) { s_ = st.s; }

private:
    std::array<uint64_t, 4> s_{};
};

}  // namespace tapegrad
