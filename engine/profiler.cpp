#include "engine/profiler.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>

#include "engine/allocator.hpp"
#include "engine/autograd.hpp"

namespace tapegrad {

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

enum class Phase : uint8_t { Forward, Backward, Scope, Site };

struct Event {
    std::string name;
    std::string scope;
    Phase phase;
    int64_t start_ns, duration_ns, self_ns;
    std::size_t bytes, peak;
    double flops;
};

// An op, backward node or scope still running on this thread.
struct Frame {
    const char* op;
    SourceLocation loc;
    Phase phase;
    double flops = 0;
    int64_t start_ns = 0, children_ns = 0;
    std::size_t allocated_before = 0, enclosing_peak = 0;
    bool profiled = false;
};

thread_local std::string t_scope;                // joined NameScopes
thread_local std::vector<Frame> t_frames;        // open ops and backward nodes
thread_local Profiler::State* t_profiler = nullptr;

}  // namespace

struct Profiler::State {
    int64_t origin_ns = now_ns();
    std::vector<Event> events;
};

namespace {

void open_frame(Frame& f) {
    if (!t_profiler) return;
    f.profiled = true;
    f.start_ns = now_ns();
    f.allocated_before = allocator().stats(0).bytes_allocated_total;
    f.enclosing_peak = allocator().begin_peak_window();
}

void close_frame(const Frame& f, std::string name) {
    if (!f.profiled || !t_profiler) return;
    const int64_t end = now_ns();
    const std::size_t peak = allocator().end_peak_window(f.enclosing_peak);
    const std::size_t allocated = allocator().stats(0).bytes_allocated_total - f.allocated_before;
    const int64_t duration = end - f.start_ns;
    // t_frames no longer holds f: its parent is the innermost profiled frame left.
    for (auto it = t_frames.rbegin(); it != t_frames.rend(); ++it)
        if (it->profiled) {
            it->children_ns += duration;
            break;
        }
    t_profiler->events.push_back({std::move(name), t_scope, f.phase, f.start_ns - t_profiler->origin_ns, duration,
                                  duration - f.children_ns, allocated, peak, f.flops});
}

}  // namespace

// ---------------------------------------------------------------- NameScope

NameScope::NameScope(std::string_view name) : previous_length_(t_scope.size()) {
    if (!t_scope.empty()) t_scope += '/';
    t_scope += name;
    if (t_profiler) start_ns_ = now_ns();
}

NameScope::~NameScope() {
    if (start_ns_ >= 0 && t_profiler) {
        const int64_t end = now_ns();
        t_profiler->events.push_back({t_scope, t_scope, Phase::Scope, start_ns_ - t_profiler->origin_ns, end - start_ns_,
                                      0, 0, 0, 0});
    }
    t_scope.resize(previous_length_);
}

const std::string& NameScope::current() { return t_scope; }

// ---------------------------------------------------------------- op scopes

namespace detail {

namespace {
bool tracing() { return t_profiler || is_anomaly_enabled() || allocator().tracking(); }

// Whether `file` is one of tapegrad's own sources: engine/, ops/ or nn/ beside this file's folder.
bool library_file(const char* file) {
    static const std::string root = [] {
        std::string here = __FILE__;  // <root>/engine/profiler.cpp
        const std::size_t slash = here.find_last_of('/');
        const std::size_t up = slash == std::string::npos ? std::string::npos : here.find_last_of('/', slash - 1);
        return up == std::string::npos ? std::string() : here.substr(0, up + 1);
    }();
    if (root.empty()) return false;
    const std::string_view f(file);
    if (f.substr(0, root.size()) != root) return false;
    const std::string_view rest = f.substr(root.size());
    return rest.starts_with("engine/") || rest.starts_with("ops/") || rest.starts_with("nn/");
}
}  // namespace

OpScope::OpScope(const char* op, const SourceLocation& loc) {
    // Ops called inside a backward closure are part of that node's backward.
    if (!tracing()) return;
    if (!t_frames.empty() && t_frames.back().phase == Phase::Backward) return;
    active_ = true;
    profiling_ = t_profiler != nullptr;
    t_frames.push_back({op, loc, Phase::Forward});
    open_frame(t_frames.back());
}

OpScope::~OpScope() {
    if (!active_) return;
    const Frame f = t_frames.back();
    t_frames.pop_back();
    close_frame(f, f.op);
}

void OpScope::set_flops(double flops) {
    if (active_) t_frames.back().flops = flops;
}

CallSiteScope::CallSiteScope(const SourceLocation& loc) {
    if (!tracing()) return;
    active_ = true;
    t_frames.push_back({nullptr, loc, Phase::Site});
}

CallSiteScope::~CallSiteScope() {
    if (active_) t_frames.pop_back();
}

BackwardSpan::BackwardSpan(const Node& node) : node_(&node) {
    t_frames.push_back({node.name().c_str(), SourceLocation(), Phase::Backward});
    t_frames.back().flops = 2 * node.info().forward_flops;
    open_frame(t_frames.back());
}

BackwardSpan::~BackwardSpan() {
    const Frame f = t_frames.back();
    t_frames.pop_back();
    // The node's scope, not the one around backward(): the table groups forward and backward.
    std::string scope = std::exchange(t_scope, node_->info().origin.scope);
    close_frame(f, node_->name());
    t_scope = std::move(scope);
}

CallSite current_call_site() {
    for (auto it = t_frames.rbegin(); it != t_frames.rend(); ++it)
        if ((it->phase == Phase::Forward || it->phase == Phase::Site) && !library_file(it->loc.file_name()))
            return {it->loc.file_name(), it->loc.line()};
    return {};
}

double current_op_flops() {
    for (auto it = t_frames.rbegin(); it != t_frames.rend(); ++it)
        if (it->phase == Phase::Forward) return it->flops;
    return 0.0;
}

bool profiling() { return t_profiler != nullptr; }

void note_recorded(const std::string& op) {
    if (!t_profiler) return;
    for (auto it = t_frames.rbegin(); it != t_frames.rend(); ++it)
        if (it->phase == Phase::Forward) {
            if (op == it->op) return;  // timed by its own OpScope
            break;
        }
    // An op without an OpScope: counted, not timed.
    t_profiler->events.push_back({op, t_scope, Phase::Forward, now_ns() - t_profiler->origin_ns, 0, 0, 0, 0, 0});
}

std::string allocation_label() {
    std::string op;
    for (auto it = t_frames.rbegin(); it != t_frames.rend() && op.empty(); ++it)
        if (it->phase == Phase::Backward) op = std::string("backward of ") + it->op;
        else if (it->phase == Phase::Forward) op = it->op;
    if (t_scope.empty()) return op.empty() ? "(outside any op)" : op;
    return op.empty() ? t_scope : t_scope + "/" + op;
}

}  // namespace detail

// ---------------------------------------------------------------- Profiler

Profiler::Profiler() : state_(std::make_unique<State>()) {
    if (t_profiler) throw std::logic_error("Profiler: one is already running on this thread; stop it first");
    t_profiler = state_.get();
    running_ = true;
}

Profiler::~Profiler() { stop(); }

void Profiler::stop() {
    if (!running_) return;
    running_ = false;
    t_profiler = nullptr;
}

namespace {

std::vector<Profiler::Stats> aggregate(const std::vector<Event>& events, bool by_scope) {
    std::map<std::string, Profiler::Stats> rows;
    for (const Event& e : events) {
        if (e.phase == Phase::Scope) continue;
        Profiler::Stats& r = rows[by_scope ? e.scope : e.name];
        r.name = by_scope ? e.scope : e.name;
        const double total = static_cast<double>(e.duration_ns) * 1e-6, self = static_cast<double>(e.self_ns) * 1e-6;
        if (e.phase == Phase::Forward) {
            ++r.forward_calls;
            r.forward_total_ms += total;
            r.forward_self_ms += self;
        } else {
            ++r.backward_calls;
            r.backward_total_ms += total;
            r.backward_self_ms += self;
        }
        r.bytes_allocated += e.bytes;
        r.peak_bytes = std::max(r.peak_bytes, e.peak);
        r.flops += e.flops;
    }
    std::vector<Profiler::Stats> out;
    for (auto& [_, r] : rows) out.push_back(std::move(r));
    std::stable_sort(out.begin(), out.end(), [](const Profiler::Stats& a, const Profiler::Stats& b) {
        return a.forward_self_ms + a.backward_self_ms > b.forward_self_ms + b.backward_self_ms;
    });
    return out;
}

std::string format_table(const std::vector<Profiler::Stats>& rows, const char* what, std::size_t limit) {
    std::string s;
    char line[256];
    std::snprintf(line, sizeof line, "%-24s %7s %10s %10s %7s %10s %10s %11s %10s %9s\n", what, "fwd", "fwd ms", "fwd self",
                  "bwd", "bwd ms", "bwd self", "alloc MiB", "peak MiB", "GFLOP");
    s += line;
    for (std::size_t i = 0; i < rows.size() && i < limit; ++i) {
        const Profiler::Stats& r = rows[i];
        std::snprintf(line, sizeof line, "%-24.24s %7lld %10.3f %10.3f %7lld %10.3f %10.3f %11.2f %10.2f %9.3f\n",
                      r.name.empty() ? "(no scope)" : r.name.c_str(), static_cast<long long>(r.forward_calls),
                      r.forward_total_ms, r.forward_self_ms, static_cast<long long>(r.backward_calls), r.backward_total_ms,
                      r.backward_self_ms, static_cast<double>(r.bytes_allocated) / 1048576.0,
                      static_cast<double>(r.peak_bytes) / 1048576.0, r.flops * 1e-9);
        s += line;
    }
    return s;
}

void append_json_string(std::string& out, const std::string& s) {
    out += '"';
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
}

}  // namespace

std::vector<Profiler::Stats> Profiler::by_op() const { return aggregate(state_->events, false); }
std::vector<Profiler::Stats> Profiler::by_scope() const { return aggregate(state_->events, true); }

std::string Profiler::table(std::size_t rows) const {
    return format_table(by_op(), "op", rows) + "\n" + format_table(by_scope(), "scope", rows);
}

std::string Profiler::chrome_trace() const {
    std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
    out += "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"forward\"}},\n";
    out += "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":2,\"args\":{\"name\":\"backward\"}}";
    char buf[256];
    for (const Event& e : state_->events) {
        out += ",\n{\"name\":";
        append_json_string(out, e.name);
        const char* cat = e.phase == Phase::Forward ? "forward" : e.phase == Phase::Backward ? "backward" : "scope";
        std::snprintf(buf, sizeof buf, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"args\":{", cat,
                      e.phase == Phase::Backward ? 2 : 1, static_cast<double>(e.start_ns) * 1e-3,
                      static_cast<double>(e.duration_ns) * 1e-3);
        out += buf;
        out += "\"scope\":";
        append_json_string(out, e.scope);
        std::snprintf(buf, sizeof buf, ",\"bytes_allocated\":%zu,\"peak_bytes\":%zu,\"flops\":%.0f}}", e.bytes, e.peak, e.flops);
        out += buf;
    }
    return out + "\n]}\n";
}

void Profiler::write_chrome_trace(const std::string& path) const {
    const std::string json = chrome_trace();
    // Written beside and renamed, so that a failure never leaves half a file behind.
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::invalid_argument("write_chrome_trace: cannot open '" + tmp + "' for writing");
        f << json;
        f.close();
        if (!f) throw std::runtime_error("write_chrome_trace: writing '" + tmp + "' failed");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error("write_chrome_trace: cannot rename '" + tmp + "' to '" + path + "'");
    }
}

}  // namespace tapegrad
