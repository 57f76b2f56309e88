// Reliability of training as a whole: a 1,000-step soak that watches resident memory and the live
// node count, bitwise determinism for a seed (and across thread counts), and independence of
// threads that train their own models at the same time.
#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "engine/autograd.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "engine/generator.hpp"
#include "engine/threads.hpp"
#include "nn/data.hpp"
#include "nn/layers.hpp"
#include "nn/optim.hpp"
#include "ops/arithmetic.hpp"
#include "ops/batch_norm.hpp"
#include "ops/conv.hpp"
#include "ops/linear.hpp"
#include "ops/kernels/conv_onednn.hpp"
#include "ops/loss.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

// A small CNN for 1x28x28 images with every layer kind the SmallCNN has: conv, batch norm, relu,
// max pool, linear and dropout (which draws from its own seeded generator).
std::shared_ptr<nn::Sequential> small_cnn(uint64_t seed) {
    using std::make_shared;
    tg::Generator gen(seed);
    const tg::Pool2dOptions pool{.kernel_size = 2};
    return make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        make_shared<nn::Conv2d>(1, 8, 3, gen, tg::Conv2dOptions{.padding = 1}), make_shared<nn::BatchNorm2d>(8),
        make_shared<nn::ReLU>(), make_shared<nn::MaxPool2d>(pool),
        make_shared<nn::Conv2d>(8, 16, 3, gen, tg::Conv2dOptions{.padding = 1}), make_shared<nn::BatchNorm2d>(16),
        make_shared<nn::ReLU>(), make_shared<nn::MaxPool2d>(pool), make_shared<nn::Flatten>(),
        make_shared<nn::Linear>(16 * 7 * 7, 32, gen), make_shared<nn::ReLU>(), make_shared<nn::Dropout>(0.25, seed),
        make_shared<nn::Linear>(32, 10, gen)});
}

struct Trainer {
    std::shared_ptr<nn::Sequential> model;
    nn::AdamW optimizer;
    explicit Trainer(uint64_t seed) : model(small_cnn(seed)), optimizer(model->parameters(), {.lr = 1e-3}) {}

    // One step: zero_grad, forward, backward, update. Returns the loss; the graph dies here.
    float step(const nn::Batch& batch) {
        optimizer.zero_grad();
        Tensor loss = tg::cross_entropy((*model)(batch.images), batch.labels);
        loss.backward();
        optimizer.step();
        return loss.item<float>();
    }
};

// Fixed synthetic batches of 1x28x28 images, so that these tests need no dataset.
std::vector<nn::Batch> synthetic_batches(int count, int64_t batch_size) {
    tg::Generator gen(1234);
    std::vector<nn::Batch> out(static_cast<std::size_t>(count));
    for (nn::Batch& b : out) {
        b.images = tg::randn({batch_size, 1, 28, 28}, gen);
        std::vector<int64_t> labels;
        for (int64_t i = 0; i < batch_size; ++i) labels.push_back(static_cast<int64_t>(gen.below(10)));
        b.labels = tg::from_vector(labels, {batch_size});
    }
    return out;
}

// The bits of every loss and of every final parameter: equal only when the runs are identical.
struct Run {
    std::vector<uint32_t> losses;
    std::vector<uint32_t> params;
    bool operator==(const Run&) const = default;
};

Run train(uint64_t seed, const std::vector<nn::Batch>& batches, int steps) {
    Trainer t(seed);
    Run run;
    for (int s = 0; s < steps; ++s)
        run.losses.push_back(std::bit_cast<uint32_t>(t.step(batches[static_cast<std::size_t>(s) % batches.size()])));
    for (const Tensor& p : t.model->parameters())
        for (float v : p.contiguous().to_vector<float>()) run.params.push_back(std::bit_cast<uint32_t>(v));
    return run;
}

// Trains in a fresh std::thread with `threads` OpenMP threads, as a user thread would.
Run train_in_thread(uint64_t seed, const std::vector<nn::Batch>& batches, int steps, int threads) {
    Run run;
    std::thread worker([&] {
        tg::set_num_threads(threads);
        run = train(seed, batches, steps);
    });
    worker.join();
    return run;
}

std::size_t first_difference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    return i;
}

int64_t resident_bytes() {
    long pages_total = 0, pages_resident = 0;
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    REQUIRE(f != nullptr);
    REQUIRE(std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) == 2);
    std::fclose(f);
    return static_cast<int64_t>(pages_resident) * sysconf(_SC_PAGESIZE);
}

constexpr int kSoakSteps = 1000;
constexpr int kWarmupSteps = 100;
#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer holds freed memory in quarantine (256 MB by default), so resident memory grows
// until that fills: under it the leak check is LeakSanitizer's, at exit, and the drift is only shown.
constexpr bool kBoundResident = false;
#else
constexpr bool kBoundResident = true;
#endif

}  // namespace

TEST_CASE("soak: 1,000 training steps on Fashion-MNIST keep memory flat and free every graph") {
    if (!std::filesystem::is_directory(nn::kFashionMnistDir)) {
        MESSAGE("skipped: ", nn::kFashionMnistDir, " is absent (install dataset-fashion-mnist)");
        return;
    }
    tg::set_num_threads(2);
    nn::DataLoader loader(nn::load_fashion_mnist(nn::kFashionMnistDir, nn::Split::Test).head(2048),
                          {.batch_size = 32, .shuffle = true, .drop_last = true, .seed = 7});
    Trainer trainer(3);
    int64_t warm_rss = 0, nodes_left = 0, non_finite = 0;
    float first_epoch = 0, last_epoch = 0;
    int step = 0;
    while (step < kSoakSteps) {
        float epoch_loss = 0;
        int batches = 0;
        for (const nn::Batch& batch : loader) {
            if (step == kSoakSteps) break;
            const float loss = trainer.step(batch);
            non_finite += !std::isfinite(loss);
            epoch_loss += loss;
            ++batches;
            nodes_left += tg::Node::live_count();
            if (++step == kWarmupSteps) warm_rss = resident_bytes();
        }
        if (first_epoch == 0) first_epoch = epoch_loss / static_cast<float>(batches);
        if (batches == loader.num_batches()) last_epoch = epoch_loss / static_cast<float>(batches);
    }
    const int64_t end_rss = resident_bytes();
    const double drift = 100.0 * static_cast<double>(end_rss - warm_rss) / static_cast<double>(warm_rss);
    MESSAGE("soak: ", kSoakSteps, " steps; resident memory ", warm_rss / 1024, " KiB after step ", kWarmupSteps, ", ",
            end_rss / 1024, " KiB at the end: drift ", drift, "%; mean loss ", first_epoch, " in the first epoch, ",
            last_epoch, " in the last full one");
    CHECK(nodes_left == 0);  // no step's graph outlived the step
    CHECK(non_finite == 0);
    if (kBoundResident) CHECK(std::abs(drift) < 5.0);
    CHECK(last_epoch < first_epoch);  // it did learn
}

TEST_CASE("determinism: the same seed gives bit-identical losses and weights for 100 steps") {
    const auto batches = synthetic_batches(4, 16);
    const Run a = train(5, batches, 100);
    const Run b = train(5, batches, 100);
    CHECK(first_difference(a.losses, b.losses) == a.losses.size());
    CHECK(a == b);
    // A different seed really is different (the check above could not pass by accident).
    CHECK_FALSE(train(6, batches, 3).losses == std::vector<uint32_t>(a.losses.begin(), a.losses.begin() + 3));
}

TEST_CASE("determinism: batch norm, conv forward and conv input gradients are the same bits at 1 and 2 threads") {
    // Above the parallel threshold, channels-last (the fast path's blocked per-channel sums) and
    // row-major.
    tg::Generator gen(8);
    const Tensor x = tg::randn({16, 16, 32, 32}, gen);
    const Tensor w = tg::randn({16, 16, 3, 3}, gen);
    const Tensor g = tg::randn({16, 16, 32, 32}, gen);
    auto run = [&](int threads, bool channels_last) {
        tg::set_num_threads(threads);
        Tensor xi = (channels_last ? x.contiguous(tg::MemoryFormat::ChannelsLast) : x.clone()).requires_grad_();
        Tensor gamma = tg::ones({16}, {.requires_grad = true}), beta = tg::zeros({16}, {.requires_grad = true});
        Tensor wi = w.detach().requires_grad_();
        Tensor y = tg::conv2d(tg::batch_norm(xi, Tensor(), Tensor(), gamma, beta), wi, Tensor(), {.padding = 1});
        (y * g).sum().backward();
        std::vector<uint32_t> bits;
        for (const Tensor& t : {y, xi.grad(), gamma.grad(), beta.grad()})
            for (float v : t.contiguous().to_vector<float>()) bits.push_back(std::bit_cast<uint32_t>(v));
        return bits;
    };
    const int before = tg::get_num_threads();
    for (const bool channels_last : {false, true}) {
        CAPTURE(channels_last);
        const auto one = run(1, channels_last);
        const auto two = run(2, channels_last);
        CHECK(first_difference(one, two) == one.size());
    }
    tg::set_num_threads(before);
}

TEST_CASE("determinism: a matmul with a long K is the same bits at 1 and 2 threads in deterministic mode") {
    // The first Linear of small_cnn at batch 16: dnnl_sgemm splits this K over 2 threads on AVX2.
    tg::Generator gen(9);
    const Tensor x = tg::randn({16, 784}, gen), w = tg::randn({784, 32}, gen), g = tg::randn({16, 32}, gen);
    auto run = [&](int threads) {
        std::vector<uint32_t> bits;
        std::thread worker([&] {
            tg::set_num_threads(threads);
            Tensor xi = x.detach().requires_grad_(), wi = w.detach().requires_grad_();
            Tensor y = tg::matmul(xi, wi);
            (y * g).sum().backward();
            for (const Tensor& t : {y, xi.grad(), wi.grad()})
                for (float v : t.contiguous().to_vector<float>()) bits.push_back(std::bit_cast<uint32_t>(v));
        });
        worker.join();
        return bits;
    };
    const auto one = run(1);
    MESSAGE("matmul [16,784]x[784,32] without deterministic mode, 1 vs 2 threads: ",
            std::string(first_difference(one, run(2)) == one.size() ? "identical" : "differ"));
    tg::set_deterministic(true);
    const auto det_one = run(1), det_two = run(2);
    tg::set_deterministic(false);
    CHECK(first_difference(det_one, det_two) == det_one.size());
    CHECK(det_one == one);  // deterministic mode changes nothing at one thread
}

TEST_CASE("determinism: training depends on the thread count unless deterministic mode is on") {
    const auto batches = synthetic_batches(4, 16);
    const Run one = train_in_thread(5, batches, 100, 1);
    const Run two = train_in_thread(5, batches, 100, 2);
    // oneDNN's conv backward-weights reduction and dnnl_sgemm's K split follow the thread count:
    // not promised, only reported.
    MESSAGE("1 vs 2 threads without deterministic mode: first loss that differs at step ",
            first_difference(one.losses, two.losses), " of ", one.losses.size(), "; weights ",
            std::string(one.params == two.params ? "identical" : "differ"));
    tg::set_deterministic(true);
    const Run det_one = train_in_thread(5, batches, 100, 1);
    const Run det_two = train_in_thread(5, batches, 100, 2);
    tg::set_deterministic(false);
    CHECK(first_difference(det_one.losses, det_two.losses) == det_one.losses.size());
    CHECK(det_one == det_two);
    // Deterministic mode changes nothing at one thread.
    CHECK(det_one == one);
}

TEST_CASE("threads: two models trained at the same time get exactly what each gets alone") {
    const auto batches = synthetic_batches(4, 16);
    const Run alone_a = train_in_thread(21, batches, 60, 2);
    const Run alone_b = train_in_thread(22, batches, 60, 1);
    Run together_a, together_b;
    std::latch start(2);
    std::thread ta([&] {
        tg::set_num_threads(2);
        start.arrive_and_wait();
        together_a = train(21, batches, 60);
    });
    std::thread tb([&] {
        tg::set_num_threads(1);
        start.arrive_and_wait();
        together_b = train(22, batches, 60);
    });
    ta.join();
    tb.join();
    CHECK(together_a == alone_a);
    CHECK(together_b == alone_b);
    CHECK_FALSE(alone_a == alone_b);
}

TEST_CASE("threads: a conv primitive built for 2 threads is not reused at 1 thread") {
    const std::size_t start = tg::kernels::conv2d_primitive_cache_size();
    tg::Generator gen(9);
    const Tensor x = tg::randn({3, 5, 11, 11}, gen), w = tg::randn({7, 5, 3, 3}, gen);
    std::thread([&] {
        tg::set_num_threads(2);
        tg::conv2d(x, w);
        const std::size_t two = tg::kernels::conv2d_primitive_cache_size();
        tg::conv2d(x, w);
        CHECK(tg::kernels::conv2d_primitive_cache_size() == two);  // same thread count: reused
        tg::set_num_threads(1);
        tg::conv2d(x, w);
        CHECK(tg::kernels::conv2d_primitive_cache_size() > two);  // oneDNN fixed its thread split at build
    }).join();
    CHECK(tg::kernels::conv2d_primitive_cache_size() > start);
}

TEST_CASE("threads: grad mode, anomaly mode and reference kernels are per thread") {
    std::latch guards_set(1), other_done(1);
    bool other_grad = false, other_anomaly = true, other_reference = true, other_records = false;
    bool main_grad = true, main_records = true;
    std::thread holder([&] {
        tg::NoGradGuard no_grad;
        tg::AnomalyModeGuard anomaly;
        tg::ReferenceKernelsGuard reference;
        guards_set.count_down();
        other_done.wait();
        main_grad = tg::is_grad_enabled();
        Tensor x = tg::ones({2}, {.requires_grad = true});
        main_records = (x * x).requires_grad();
    });
    std::thread other([&] {
        guards_set.wait();
        other_grad = tg::is_grad_enabled();
        other_anomaly = tg::is_anomaly_enabled();
        other_reference = tg::use_reference_kernels();
        Tensor x = tg::ones({2}, {.requires_grad = true});
        other_records = (x * x).requires_grad();
        other_done.count_down();
    });
    holder.join();
    other.join();
    // The guards held by one thread do not reach the other...
    CHECK(other_grad);
    CHECK_FALSE(other_anomaly);
    CHECK_FALSE(other_reference);
    CHECK(other_records);
    // ...and they do hold in their own thread while the other one runs.
    CHECK_FALSE(main_grad);
    CHECK_FALSE(main_records);
}
