// tapegrad_conv_kernels: every candidate kernel for each pass of a convolution (forward, input
// gradient, weight gradient), called on the same tensors, for the convolutions of the SmallCNN,
// ResNet-18 and MobileNetV2 (the depthwise ones) on batch 32 of 3x32x32 images, and the 56x56 row.
// The candidates: oneDNN's primitives (ops/kernels/conv_onednn.hpp), the im2col + GEMM passes
// (ops/kernels/conv_gemm.hpp), the depthwise weight-gradient loop (ops/kernels/conv_depthwise.hpp),
// the few-channel loops (ops/kernels/conv_few_channels.hpp), and with --bf16 1 oneDNN's bf16
// primitives (autocast's kernels; their results differ by bfloat16's rounding). This is what the
// kernel rules in conv_gemm.cpp and conv_depthwise.cpp were measured with (docs/performance.md,
// "What the library picks per processor").
//
// Per case and thread count, the candidates of a pass are timed in turn, round after round (so that
// a load from elsewhere falls on all of them alike); each timing is a batch of calls lasting about
// --ms milliseconds. Reported: the process's CPU time per call (all threads), best and median over
// the rounds, the wall time's median, and the rate per core of CPU time against the fp32 peak of
// one core (flops per cycle x the clock, from /proc/cpuinfo unless --ghz says otherwise) and
// against what a loop of independent 512-bit FMAs reaches on one core (the clock /proc/cpuinfo
// reports may be the base clock).
// "pick" marks the candidate the library's rules take; "x pick" is each candidate's median CPU time
// over the pick's.
//
//   tapegrad_conv_kernels [--rounds N] [--ms M] [--threads 1,2] [--filter TEXT] [--ghz G] [--flops-per-cycle F] [--bf16 1]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <immintrin.h>
#include <string>
#include <utility>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"
#include "engine/threads.hpp"
#include "ops/kernels/conv_depthwise.hpp"
#include "ops/kernels/conv_few_channels.hpp"
#include "ops/kernels/conv_gemm.hpp"
#include "ops/kernels/conv_onednn.hpp"
#include "ops/kernels/cpu_isa.hpp"

namespace tg = tapegrad;
namespace k = tapegrad::kernels;

namespace {

struct Case {
    std::string model;
    tg::Shape x, w;
    int64_t stride = 1, pad = 0, groups = 1;
};

// The convolutions, once per distinct shape. ResNet-18's strided 1x1 downsamples run as stride-1
// 1x1 convolutions of the subsampled input (ops/conv.cpp), so they appear in that form.
std::vector<Case> cases() {
    std::vector<Case> c = {
        {"smallcnn conv1", {64, 3, 32, 32}, {32, 3, 3, 3}, 1, 1},
        {"smallcnn conv2", {64, 32, 16, 16}, {64, 32, 3, 3}, 1, 1},
        // First layers on few channels (the few-channel kernels' side of the rules): Fashion-MNIST's
        // one channel, and an RGB stem with 16 and 64 filters.
        {"few channels fashion-mnist conv1", {64, 1, 28, 28}, {32, 1, 3, 3}, 1, 1},
        {"few channels rgb stem 16", {32, 3, 32, 32}, {16, 3, 3, 3}, 1, 1},
        {"few channels rgb stem 64", {32, 3, 32, 32}, {64, 3, 3, 3}, 1, 1},
        {"56x56 row", {8, 64, 56, 56}, {64, 64, 3, 3}, 1, 1},
        {"resnet18 conv1 7x7 s2", {32, 3, 32, 32}, {64, 3, 7, 7}, 2, 3},
        {"resnet18 layer1", {32, 64, 8, 8}, {64, 64, 3, 3}, 1, 1},
        {"resnet18 layer2.0 s2", {32, 64, 8, 8}, {128, 64, 3, 3}, 2, 1},
        {"resnet18 layer2", {32, 128, 4, 4}, {128, 128, 3, 3}, 1, 1},
        {"resnet18 layer2 down 1x1", {32, 64, 4, 4}, {128, 64, 1, 1}, 1, 0},
        {"resnet18 layer3.0 s2", {32, 128, 4, 4}, {256, 128, 3, 3}, 2, 1},
        {"resnet18 layer3", {32, 256, 2, 2}, {256, 256, 3, 3}, 1, 1},
        {"resnet18 layer3 down 1x1", {32, 128, 2, 2}, {256, 128, 1, 1}, 1, 0},
        {"resnet18 layer4.0 s2", {32, 256, 2, 2}, {512, 256, 3, 3}, 2, 1},
        {"resnet18 layer4", {32, 512, 1, 1}, {512, 512, 3, 3}, 1, 1},
        {"resnet18 layer4 down 1x1", {32, 256, 1, 1}, {512, 256, 1, 1}, 1, 0},
    };
    // MobileNetV2's depthwise 3x3 convolutions (groups = channels) on 32x32 inputs: C, side, stride.
    const int64_t dw[][3] = {{32, 16, 1}, {96, 16, 2}, {144, 8, 1}, {144, 8, 2}, {192, 4, 1}, {192, 4, 2},
                             {384, 2, 1}, {576, 2, 1}, {576, 2, 2}, {960, 1, 1}};
    for (const auto& d : dw)
        c.push_back({"mobilenetv2 depthwise" + std::string(d[2] == 2 ? " s2" : ""), {32, d[0], d[1], d[1]}, {d[0], 1, 3, 3}, d[2], 1, d[0]});
    return c;
}

k::ConvGeometry geometry(const Case& c) {
    k::ConvGeometry g{};
    g.N = c.x[0], g.C = c.x[1], g.H = c.x[2], g.W = c.x[3];
    g.F = c.w[0], g.KH = c.w[2], g.KW = c.w[3];
    g.stride_h = g.stride_w = c.stride, g.pad_h = g.pad_w = c.pad, g.dilation_h = g.dilation_w = 1, g.groups = c.groups;
    g.OH = (g.H + 2 * g.pad_h - g.KH) / g.stride_h + 1, g.OW = (g.W + 2 * g.pad_w - g.KW) / g.stride_w + 1;
    return g;
}

double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
double wall_seconds() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The first "cpu MHz" of /proc/cpuinfo, in GHz (0 when there is none).
double cpuinfo_ghz() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("cpu MHz", 0) == 0) return std::stod(line.substr(line.find(':') + 1)) / 1000.0;
    return 0.0;
}

// What one core's FMA pipes give here: 12 independent chains of 512-bit FMAs (enough to cover
// their latency on two pipes), CPU time. The clock /proc/cpuinfo reports may be the base clock
// while the core runs faster, so the bench prints both peaks.
__attribute__((target("avx512f"))) double measured_fma_gflops() {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(float(i));
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    constexpr long kIterations = 50'000'000;
    const double t0 = cpu_seconds();
    for (long it = 0; it < kIterations; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    const double seconds = cpu_seconds() - t0;
    alignas(64) float lanes[16];
    for (int i = 1; i < 12; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    _mm512_store_ps(lanes, acc[0]);
    volatile float keep = lanes[0];  // the loop's result is used
    (void)keep;
    return double(kIterations) * 12 * 32 / seconds * 1e-9;
}

struct Candidate {
    Candidate(std::string n, std::function<tg::Tensor()> r) : name(std::move(n)), run(std::move(r)) {}
    std::string name;
    std::function<tg::Tensor()> run;  // returns the result (dx, dW, or the output)
    std::vector<double> cpu, wall;    // per call, one entry per round
    int reps = 1;
};

// Largest |a - b| over the largest |b|: the candidates must compute the same thing.
double relative_difference(const tg::Tensor& a, const tg::Tensor& b) {
    const auto av = a.contiguous().to_vector<float>(), bv = b.contiguous().to_vector<float>();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < av.size(); ++i) {
        diff = std::max(diff, double(std::fabs(av[i] - bv[i])));
        scale = std::max(scale, double(std::fabs(bv[i])));
    }
    return scale > 0 ? diff / scale : diff;
}

struct Options {
    int rounds = 7;
    double ms = 30;
    std::vector<int> threads = {1, 2};
    std::string filter;
    bool bf16 = false;  // --bf16 1: oneDNN's bf16 primitives as a candidate too (autocast's kernels)
    double ghz = 0, flops_per_cycle = 64;  // Zen 5: two 512-bit FMA pipes, 2 x 16 x 2 flops
    double fma_gflops = 0;                  // the FMA loop's rate, where the processor has AVX-512
};

void measure_pass(const std::string& title, std::vector<Candidate>& cands, const std::string& pick, double flops, const Options& o) {
    const tg::Tensor first = cands[0].run();
    std::string diffs;
    for (std::size_t i = 1; i < cands.size(); ++i) {
        char buf[64];
        std::snprintf(buf, sizeof buf, " %s vs %s %.1e", cands[i].name.c_str(), cands[0].name.c_str(), relative_difference(cands[i].run(), first));
        diffs += buf;
    }
    for (Candidate& c : cands) {  // warm-up, and the batch size for about o.ms per timing
        const double t0 = wall_seconds();
        c.run();
        c.reps = std::max(1, int(o.ms * 1e-3 / std::max(1e-7, wall_seconds() - t0)));
    }
    for (int r = 0; r < o.rounds; ++r)
        for (Candidate& c : cands) {
            const double c0 = cpu_seconds(), w0 = wall_seconds();
            for (int i = 0; i < c.reps; ++i) c.run();
            c.cpu.push_back((cpu_seconds() - c0) / c.reps);
            c.wall.push_back((wall_seconds() - w0) / c.reps);
        }
    double pick_median = 0;
    for (const Candidate& c : cands)
        if (c.name == pick) pick_median = median(c.cpu);
    const double peak = o.ghz * o.flops_per_cycle, loop_peak = o.fma_gflops > 0 ? o.fma_gflops : peak;
    std::printf("  %-14s%s\n", title.c_str(), diffs.empty() ? "" : ("   max rel diff" + diffs).c_str());
    for (const Candidate& c : cands) {
        const double best = *std::min_element(c.cpu.begin(), c.cpu.end()), med = median(c.cpu);
        const double rate = flops / med * 1e-9;
        std::printf("    %-10s %s cpu ms best %8.3f median %8.3f  wall median %8.3f  %6.1f GFLOP/s a core (%3.0f%% peak, %3.0f%% FMA loop)  %.2fx pick\n",
                    c.name.c_str(), c.name == pick ? "pick" : "    ", 1e3 * best, 1e3 * med, 1e3 * median(c.wall), rate,
                    100 * rate / peak, 100 * rate / loop_peak, med / pick_median);
    }
}

void measure_case(const Case& c, const Options& o, int threads) {
    tg::set_num_threads(threads);
    const k::ConvGeometry g = geometry(c);
    tg::Generator gen(1);
    const tg::Tensor x = tg::randn(c.x, gen).contiguous(tg::MemoryFormat::ChannelsLast);
    // Weights channels-last, as in the models run channels-last (model.to(ChannelsLast)).
    const tg::Tensor w = tg::randn(c.w, gen).contiguous(tg::MemoryFormat::ChannelsLast);
    const tg::Tensor dout = tg::randn(g.output_shape(), gen).contiguous(tg::MemoryFormat::ChannelsLast);
    const double flops = 2.0 * g.N * g.F * g.OH * g.OW * g.channels_per_group() * g.KH * g.KW;
    std::printf("%s x[%ld,%ld,%ld,%ld] w[%ld,%ld,%ld,%ld] s%ld p%ld%s, %d thread%s, %.1f MFLOP a pass\n", c.model.c_str(), g.N, g.C,
                g.H, g.W, c.w[0], c.w[1], c.w[2], c.w[3], c.stride, c.pad, c.groups > 1 ? " depthwise" : "", threads,
                threads > 1 ? "s" : "", flops * 1e-6);
    const bool one_group = g.groups == 1;
    const bool data_gemm_ok = one_group && g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= g.KH - 1 && g.pad_w <= g.KW - 1;
    const bool depthwise = g.groups > 1 && g.groups == g.C && g.F == g.C;
    const bool few_channels = k::conv2d_few_channels_supported(g);
    {
        std::vector<Candidate> v{{"onednn", [&] { return k::conv2d_forward_onednn(x, w, tg::Tensor(), g); }}};
        if (one_group) v.push_back({"im2col", [&] { return k::conv2d_forward_im2col(x, w, tg::Tensor(), g); }});
        if (few_channels) v.push_back({"few-chan", [&] { return k::conv2d_forward_few_channels(x, w, tg::Tensor(), g); }});
        if (o.bf16) v.push_back({"onednn-bf16", [&] { return k::conv2d_forward_onednn(x, w, tg::Tensor(), g, tg::Precision::BFloat16); }});
        measure_pass("forward", v, k::conv2d_forward_uses_few_channels(g) ? "few-chan" : k::conv2d_forward_uses_gemm(g) ? "im2col" : "onednn", flops, o);
    }
    {
        std::vector<Candidate> v{{"onednn", [&] { return k::conv2d_backward_data_onednn(dout, w, g); }}};
        if (data_gemm_ok) v.push_back({"im2col", [&] { return k::conv2d_backward_data_im2col(dout, w, g); }});
        if (o.bf16) v.push_back({"onednn-bf16", [&] { return k::conv2d_backward_data_onednn(dout, w, g, tg::Precision::BFloat16); }});
        measure_pass("input grad", v, k::conv2d_backward_data_uses_gemm(g) ? "im2col" : "onednn", flops, o);
    }
    {
        std::vector<Candidate> v{{"onednn", [&] { return k::conv2d_backward_weights_onednn(x, dout, g, false).weight; }}};
        if (one_group) v.push_back({"im2col", [&] { return k::conv2d_backward_weights_im2col(x, dout, g, false).weight; }});
        if (depthwise) v.push_back({"depthwise", [&] { return k::conv2d_backward_weights_depthwise(x, dout, g, false).weight; }});
        if (few_channels) v.push_back({"few-chan", [&] { return k::conv2d_backward_weights_few_channels(x, dout, g, false).weight; }});
        if (o.bf16) v.push_back({"onednn-bf16", [&] { return k::conv2d_backward_weights_onednn(x, dout, g, false, tg::Precision::BFloat16).weight; }});
        const std::string pick = k::conv2d_weight_grad_uses_depthwise(g)        ? "depthwise"
                                 : k::conv2d_weight_grad_uses_few_channels(g) ? "few-chan"
                                 : k::conv2d_weight_grad_uses_gemm(g)         ? "im2col"
                                                                              : "onednn";
        measure_pass("weight grad", v, pick, flops, o);
    }
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--rounds") o.rounds = std::max(1, std::stoi(value));
        else if (key == "--ms") o.ms = std::stod(value);
        else if (key == "--filter") o.filter = value;
        else if (key == "--bf16") o.bf16 = value == "1";
        else if (key == "--ghz") o.ghz = std::stod(value);
        else if (key == "--flops-per-cycle") o.flops_per_cycle = std::stod(value);
        else if (key == "--threads") {
            o.threads.clear();
            for (std::size_t p = 0; p < value.size();) {
                const std::size_t q = std::min(value.find(',', p), value.size());
                o.threads.push_back(std::stoi(value.substr(p, q - p)));
                p = q + 1;
            }
        } else {
            std::fprintf(stderr, "unknown option %s (see the comment at the top of bench/conv_kernels.cpp)\n", key.c_str());
            std::exit(2);
        }
    }
    if (o.ghz <= 0) o.ghz = cpuinfo_ghz();
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (__builtin_cpu_supports("avx512f")) {
        o.fma_gflops = measured_fma_gflops();
        std::printf("one core's 512-bit FMA loop: %.1f GFLOP/s (%.2f GHz at %.0f flops/cycle)\n", o.fma_gflops,
                    o.fma_gflops / o.flops_per_cycle, o.flops_per_cycle);
    }
    std::printf("oneDNN ISA %s; fp32 peak assumed %.0f flops/cycle x %.3f GHz = %.1f GFLOP/s per core; %d rounds of ~%.0f ms, "
                "CPU time of the process per call\n",
                k::onednn_isa_name().c_str(), o.flops_per_cycle, o.ghz, o.flops_per_cycle * o.ghz, o.rounds, o.ms);
    for (const Case& c : cases())
        for (int threads : o.threads)
            if (o.filter.empty() || c.model.find(o.filter) != std::string::npos) measure_case(c, o, threads);
    return 0;
}
