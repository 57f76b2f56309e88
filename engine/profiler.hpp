#pragma once
// Seeing where time and memory go: NameScope labels the ops recorded inside it, Profiler records
// every op's forward and backward (calls, total and self time, bytes, FLOPs) per op and per scope,
// prints a table and writes a Chrome trace. Everything here is per thread and costs one
// thread-local check per op while no Profiler runs and anomaly mode is off.
#include <cstddef>
#include <cstdint>
#include <memory>
#include "engine/source_location.hpp"
#include <string>
#include <string_view>
#include <vector>

namespace tapegrad {

class Node;

// Labels the ops recorded while it lives (thread-local): anomaly errors and the profiler name
// the scope. Nested scopes join with '/': "encoder/block3".
class NameScope {
public:
    explicit NameScope(std::string_view name);
    ~NameScope();
    NameScope(const NameScope&) = delete;
    NameScope& operator=(const NameScope&) = delete;
    // The joined scopes of this thread; "" outside any.
    static const std::string& current();

private:
    std::size_t previous_length_;
    int64_t start_ns_ = -1;  // while profiling
};

// Records ops run on the thread that created it, until stop() or destruction. One at a time per
// thread. Time is wall-clock; bytes come from the caching allocator (process-wide, so another
// thread allocating at the same time is counted too).
class Profiler {
public:
    struct Stats {
        std::string name;  // the op, or the scope ("" for ops outside any scope)
        int64_t forward_calls = 0, backward_calls = 0;
        double forward_total_ms = 0, forward_self_ms = 0;    // total includes ops called inside
        double backward_total_ms = 0, backward_self_ms = 0;
        std::size_t bytes_allocated = 0;  // summed over calls, forward and backward
        std::size_t peak_bytes = 0;       // the most bytes in use while one call ran
        double flops = 0;                 // conv2d, matmul and linear; backward counted as 2x forward
    };

    Profiler();
    ~Profiler();
    Profiler(const Profiler&) = delete;
    Profiler& operator=(const Profiler&) = delete;
    void stop();

    // Sorted by forward + backward self time, largest first.
    std::vector<Stats> by_op() const;
    std::vector<Stats> by_scope() const;
    // The two tables as text, at most `rows` rows each.
    std::string table(std::size_t rows = 25) const;
    // Chrome trace event JSON (chrome://tracing, Perfetto): forward ops and scopes on one track,
    // backward nodes on another.
    std::string chrome_trace() const;
    void write_chrome_trace(const std::string& path) const;

    struct State;

private:
    std::unique_ptr<State> state_;
    bool running_ = false;
};

namespace detail {

// At the entry of a public op: keeps the user's call site of the outermost op (for anomaly
// mode), names the op for allocation labels, and times it while a Profiler runs.
class OpScope {
public:
    OpScope(const char* op, const SourceLocation& loc);
    ~OpScope();
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;
    // Whether the FLOPs are wanted: compute them only then.
    bool counting_flops() const { return profiling_; }
    // The forward's floating-point operations (a multiply-add is two).
    void set_flops(double flops);

private:
    bool active_ = false;
    bool profiling_ = false;
};

// Around a call that is not an op (a Module's call operator): only remembers the call site.
class CallSiteScope {
public:
    explicit CallSiteScope(const SourceLocation& loc);
    ~CallSiteScope();
    CallSiteScope(const CallSiteScope&) = delete;
    CallSiteScope& operator=(const CallSiteScope&) = delete;

private:
    bool active_ = false;
};

// Around a node's backward closure while profiling.
class BackwardSpan {
public:
    explicit BackwardSpan(const Node& node);
    ~BackwardSpan();
    BackwardSpan(const BackwardSpan&) = delete;
    BackwardSpan& operator=(const BackwardSpan&) = delete;

private:
    const Node* node_ = nullptr;
};

struct CallSite {
    const char* file = nullptr;
    uint32_t line = 0;
};
// The innermost open op or module call made from outside tapegrad's own sources (engine/, ops/,
// nn/): the line of the user's script. File null when none.
CallSite current_call_site();
// The FLOPs the innermost open op declared.
double current_op_flops();
bool profiling();
// Counts a recorded op that has no OpScope of its own (its forward is not timed).
void note_recorded(const std::string& op);
// "block3/conv2d", "backward of conv2d", or the scope alone outside ops: labels allocations.
std::string allocation_label();

}  // namespace detail
}  // namespace tapegrad
