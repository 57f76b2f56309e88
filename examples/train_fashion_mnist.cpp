// Trains a small CNN on Fashion-MNIST: the SmallCNN of the CNN notes (section 2.8) on 1x28x28
// inputs, AdamW, cross-entropy, inputs normalised with the training set's mean and std.
//
//   train_fashion_mnist --epochs 15 --out ./out
//   train_fashion_mnist --epochs 20 --resume ./out/checkpoint.tgck
//   train_fashion_mnist --bf16          (convolutions and linear layers in bfloat16, ops/autocast.hpp)
//   mpirun -np 2 train_fashion_mnist --distributed --threads 1     (data-parallel, docs/distributed.md)
//
// Writes to --out: checkpoint.tgck (model, optimizer, epoch), curve.csv and curve.svg; with --graph
// the first step's tape as graph.dot (and graph.svg when Graphviz's `dot` is installed); with
// --profile a per-op table of the first steps and their Chrome trace, trace.json.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "tapegrad.hpp"
#ifdef TAPEGRAD_HAVE_MPI
#include "distributed/data_parallel.hpp"
#include "distributed/sampler.hpp"
#include "distributed/sync_batch_norm.hpp"
namespace dist = tapegrad::distributed;
#endif

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

// Makes the model's batch norm layers: BatchNorm2d, or SyncBatchNorm when training distributed
// with --sync-batchnorm.
using BatchNormFactory = std::function<std::shared_ptr<nn::BatchNorm>(int64_t channels)>;

struct SmallCNN : nn::Module {
    std::shared_ptr<nn::Conv2d> conv1, conv2;
    std::shared_ptr<nn::BatchNorm> bn1, bn2;
    std::shared_ptr<nn::Linear> fc1, fc2;
    std::shared_ptr<nn::Dropout> drop;

    SmallCNN(tg::Generator& gen, uint64_t dropout_seed, const BatchNormFactory& batch_norm) : Module("SmallCNN") {
        conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(1, 32, 3, gen, tg::Conv2dOptions{.padding = 1}));
        bn1 = register_module("bn1", batch_norm(32));
        conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, 3, gen, tg::Conv2dOptions{.padding = 1}));
        bn2 = register_module("bn2", batch_norm(64));
        fc1 = register_module("fc1", std::make_shared<nn::Linear>(64 * 7 * 7, 128, gen));
        drop = register_module("drop", std::make_shared<nn::Dropout>(0.5, dropout_seed));
        fc2 = register_module("fc2", std::make_shared<nn::Linear>(128, 10, gen));
    }

    Tensor forward(const Tensor& input) override {
        Tensor x;
        {
            tg::NameScope scope("block1");
            // Pooling before relu gives the same values and gradients (relu is monotone, so they
            // commute) and runs relu on a quarter of the elements.
            x = tg::relu(tg::max_pool2d((*bn1)((*conv1)(input)), {.kernel_size = 2}));  // [B,32,14,14]
        }
        {
            tg::NameScope scope("block2");
            x = tg::relu(tg::max_pool2d((*bn2)((*conv2)(x)), {.kernel_size = 2}));  // [B,64,7,7]
        }
        tg::NameScope scope("head");
        x = x.flatten(1);  // [B,3136]
        x = (*drop)(tg::relu((*fc1)(x)));
        return (*fc2)(x);  // logits [B,10]
    }
};

struct Flags {
    int64_t epochs = 15;
    int64_t batch_size = 64;
    double lr = 1e-3;
    uint64_t seed = 0;
    std::string data_dir = nn::kFashionMnistDir;
    int threads = 0;  // 0: OMP_NUM_THREADS or all cores
    int64_t workers = 0;  // DataLoader threads preparing batches ahead of the step
    std::string out = "./out";
    std::string resume;
    int64_t limit = 0;  // 0: the whole training set
    // Cosine annealing of AdamW's lr to 0 over --epochs: with a constant lr the test accuracy
    // wanders by +-0.4% between late epochs (0.9193 after 15), annealed it settles (0.93).
    bool cosine = true;
    // Data-parallel over MPI: one process per rank, --batch-size split evenly among them.
    bool distributed = false;
    bool sync_batchnorm = false;    // SyncBatchNorm instead of per-rank statistics
    double bucket_mb = 25;          // gradient bucket size
    bool reduce_after_backward = false;  // start the all-reduces after backward, not during it
    bool graph = false;        // write the first step's tape
    int64_t profile_steps = 0;  // profile the first N steps
    bool bf16 = false;          // forward (and its backward) under tg::AutocastGuard(kBFloat16)
};

const char* kUsage =
    "usage: train_fashion_mnist [--epochs N] [--batch-size N] [--lr X] [--seed N] [--data-dir DIR]\n"
    "                           [--threads N] [--workers N] [--out DIR] [--resume CHECKPOINT] [--limit N]\n"
    "                           [--lr-schedule constant|cosine] [--graph] [--profile [N]] [--bf16]\n"
    "                           [--distributed [--sync-batchnorm] [--bucket-mb X] [--reduce-after-backward]]\n"
    "  --epochs N        total epochs to train (default 15)\n"
    "  --batch-size N    images per step (default 64)\n"
    "  --lr X            AdamW learning rate (default 0.001)\n"
    "  --seed N          seed for weights, shuffling and dropout (default 0)\n"
    "  --data-dir DIR    directory of MNIST-format files (default /usr/share/datasets/fashion-mnist)\n"
    "  --threads N       threads (default: OMP_NUM_THREADS, else all cores)\n"
    "  --workers N       data-loading threads making batches ahead of the step (default 0:\n"
    "                    the step's thread makes each batch); the batches are the same either way\n"
    "  --out DIR         where the checkpoint, curve.csv and curve.svg go (default ./out)\n"
    "  --resume FILE     continue from a checkpoint written by this program\n"
    "  --limit N         train on the first N images only (quick runs)\n"
    "  --lr-schedule S   cosine (default: annealed to 0 over --epochs) or constant\n"
    "  --graph           write the first step's autograd graph to OUT/graph.dot (and graph.svg\n"
    "                    when Graphviz's dot is installed)\n"
    "  --profile [N]     profile the first N steps (default 20): print a per-op and per-scope table\n"
    "                    and the allocator's summary, write the Chrome trace OUT/trace.json\n"
    "  --bf16            mixed precision, as torch.autocast(\"cpu\", dtype=torch.bfloat16): convolutions\n"
    "                    and linear layers compute in bfloat16; weights and optimizer stay float32\n"
    "  --distributed     data-parallel over the processes mpirun started (mpirun -np 2 ...);\n"
    "                    --batch-size is the global batch, split evenly among them\n"
    "  --sync-batchnorm  with --distributed: batch norm statistics over every rank's batch\n"
    "                    (default: each rank normalises with its own batch's, as PyTorch)\n"
    "  --bucket-mb X     with --distributed: gradient bucket size in MiB (default 25)\n"
    "  --reduce-after-backward  with --distributed: start the gradient all-reduces after\n"
    "                    backward instead of overlapping them with it (for measurements)\n";

[[noreturn]] void usage_error(const std::string& message) {
    std::cerr << "train_fashion_mnist: " << message << "\n" << kUsage;
    std::exit(2);
}

template <class T>
T parse_number(const std::string& flag, const std::string& text, T min) {
    std::istringstream in(text);
    T value;
    if (!(in >> value) || !in.eof() || value < min)
        usage_error(flag + " expects a number >= " + std::to_string(min) + ", got '" + text + "'");
    return value;
}

Flags parse_flags(int argc, char** argv) {
    Flags f;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::cout << kUsage;
            std::exit(0);
        }
        if (flag == "--distributed" || flag == "--sync-batchnorm" || flag == "--reduce-after-backward") {
            (flag == "--distributed" ? f.distributed : flag == "--sync-batchnorm" ? f.sync_batchnorm : f.reduce_after_backward) = true;
            continue;
        }
        if (flag == "--graph" || flag == "--bf16") {
            (flag == "--graph" ? f.graph : f.bf16) = true;
            continue;
        }
        if (flag == "--profile") {
            f.profile_steps = 20;
            if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
                f.profile_steps = parse_number<int64_t>(flag, argv[++i], 1);
            continue;
        }
        if (i + 1 >= argc) usage_error(flag.rfind("--", 0) == 0 ? flag + " needs a value" : "unexpected argument '" + flag + "'");
        const std::string value = argv[++i];
        if (flag == "--epochs") f.epochs = parse_number<int64_t>(flag, value, 1);
        else if (flag == "--batch-size") f.batch_size = parse_number<int64_t>(flag, value, 1);
        else if (flag == "--lr") f.lr = parse_number<double>(flag, value, 0.0);
        else if (flag == "--seed") f.seed = parse_number<uint64_t>(flag, value, 0);
        else if (flag == "--data-dir") f.data_dir = value;
        else if (flag == "--threads") f.threads = parse_number<int>(flag, value, 1);
        else if (flag == "--workers") f.workers = parse_number<int64_t>(flag, value, 0);
        else if (flag == "--out") f.out = value;
        else if (flag == "--resume") f.resume = value;
        else if (flag == "--limit") f.limit = parse_number<int64_t>(flag, value, 1);
        else if (flag == "--bucket-mb") f.bucket_mb = parse_number<double>(flag, value, 1e-6);
        else if (flag == "--lr-schedule" && (value == "constant" || value == "cosine")) f.cosine = value == "cosine";
        else if (flag == "--lr-schedule") usage_error("--lr-schedule expects constant or cosine, got '" + value + "'");
        else usage_error("unknown flag '" + flag + "'");
    }
    if ((f.sync_batchnorm || f.reduce_after_backward) && !f.distributed)
        usage_error("--sync-batchnorm and --reduce-after-backward need --distributed");
#ifndef TAPEGRAD_HAVE_MPI
    if (f.distributed)
        usage_error("--distributed needs a build with MPI: install libopenmpi-dev and openmpi-bin "
                    "(scripts/setup.sh does) and rebuild");
#endif
    return f;
}

// The processes training together: this one alone, or the ranks of an MPI job.
struct Job {
    int rank = 0;
    int size = 1;
    bool is_main() const { return rank == 0; }
    // Sums each value over the ranks, in place.
    std::function<void(std::vector<double>&)> sum_over_ranks = [](std::vector<double>&) {};
    // Appended to each epoch's line: what the gradient all-reduces cost.
    std::function<std::string()> communication_note = [] { return std::string(); };
};

struct TestResult {
    double accuracy = 0, loss = 0;
};

// Each rank scores its own shard of the test set; the counts are summed over the ranks.
TestResult evaluate(nn::Module& model, nn::DataLoader& test, const Job& job) {
    model.eval();
    tg::NoGradGuard no_grad;
    std::vector<double> sums(3, 0.0);  // correct, images, loss summed over images
    for (const nn::Batch& batch : test) {
        const Tensor logits = model(batch.images);
        const double images = static_cast<double>(batch.labels.numel());
        sums[0] += static_cast<double>(tg::count_equal(tg::argmax(logits, 1), batch.labels));
        sums[1] += images;
        sums[2] += tg::cross_entropy(logits, batch.labels).item() * images;
    }
    model.train();
    job.sum_over_ranks(sums);
    return {sums[0] / sums[1], sums[2] / sums[1]};
}

// Writes the tape behind the first step's loss, and renders it when Graphviz is installed.
void write_graph(const Tensor& loss, const SmallCNN& model, const std::string& dir) {
    const std::string dot = dir + "/graph.dot", svg = dir + "/graph.svg";
    {
        std::ofstream out(dot);
        out << tg::to_dot(loss, model);
        if (!out) throw std::runtime_error("cannot write " + dot);
    }
    std::cout << "wrote " << dot;
    if (std::system("command -v dot >/dev/null 2>&1") == 0 &&
        std::system(("dot -Tsvg '" + dot + "' -o '" + svg + "'").c_str()) == 0)
        std::cout << " and " << svg;
    else
        std::cout << " (install graphviz to render it: dot -Tsvg " << dot << " -o " << svg << ")";
    std::cout << "\n";
}

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

int train(const Flags& flags, const Job& job, const BatchNormFactory& batch_norm,
          const std::function<std::shared_ptr<nn::Module>(std::shared_ptr<SmallCNN>)>& wrap,
          const std::function<void()>& after_backward) {
    if (flags.threads > 0) tg::set_num_threads(flags.threads);
    if (flags.batch_size % job.size != 0)
        throw std::invalid_argument("--batch-size " + std::to_string(flags.batch_size) + " does not split evenly among " +
                                    std::to_string(job.size) + " ranks");

    nn::ImageDataset train_set = nn::load_mnist(flags.data_dir, nn::Split::Train);
    if (flags.limit > 0) train_set = train_set.head(flags.limit);
    const auto [pixel_mean, pixel_std] = train_set.pixel_mean_std();
    // Distributed, each rank takes every size-th item of the permutation a single process would
    // draw, so that one step of all ranks together sees the single process's batch.
    std::shared_ptr<nn::Sampler> train_sampler, test_sampler;
#ifdef TAPEGRAD_HAVE_MPI
    std::shared_ptr<dist::DistributedSampler> train_shards;
    if (flags.distributed) {
        train_shards = std::make_shared<dist::DistributedSampler>(job.size, job.rank,
                                                                  dist::SamplerOptions{.seed = flags.seed * 1000003});
        train_sampler = train_shards;
        test_sampler = std::make_shared<dist::DistributedSampler>(
            job.size, job.rank, dist::SamplerOptions{.shuffle = false, .remainder = dist::Remainder::Uneven});
    }
#endif
    nn::DataLoader train(std::move(train_set), {.batch_size = flags.batch_size / job.size, .shuffle = !train_sampler,
                                                .mean = pixel_mean, .std = pixel_std, .sampler = train_sampler,
                                                .num_workers = flags.workers});
    nn::DataLoader test(nn::load_mnist(flags.data_dir, nn::Split::Test),
                        {.batch_size = 1000, .shuffle = false, .mean = pixel_mean, .std = pixel_std, .sampler = test_sampler});

    tg::Generator gen(flags.seed);
    auto model = std::make_shared<SmallCNN>(gen, flags.seed, batch_norm);
    // PyTorch's model.to(memory_format=torch.channels_last): the convolutions and the layers after
    // them run on NHWC memory with no reorders around each convolution (docs/performance.md).
    model->to(tg::MemoryFormat::ChannelsLast);
    auto options = nn::AdamW::defaults();
    options.lr = flags.lr;
    nn::AdamW optimizer(model->parameters(), options);
    std::optional<nn::CosineAnnealingLR> schedule;
    if (flags.cosine) schedule.emplace(optimizer, flags.epochs);

    // Rank 0 writes the checkpoint and the curves; every rank reads the checkpoint to resume.
    if (job.is_main()) std::filesystem::create_directories(flags.out);
    const std::string checkpoint = flags.out + "/checkpoint.tgck", csv = flags.out + "/curve.csv",
                      svg = flags.out + "/curve.svg";
    std::vector<nn::EpochRecord> curve;
    int64_t first_epoch = 1;
    if (!flags.resume.empty()) {
        first_epoch = nn::load_checkpoint(flags.resume, *model, &optimizer).epoch + 1;
        if (job.is_main() && std::filesystem::exists(csv))
            for (const auto& r : nn::read_curve_csv(csv))
                if (r.epoch < first_epoch) curve.push_back(r);
        if (job.is_main()) std::cout << "resumed from " << flags.resume << " after epoch " << first_epoch - 1 << "\n";
    }
    // Distributed: checks the model is the same everywhere and copies rank 0's weights to all.
    const std::shared_ptr<nn::Module> net = wrap(model);
    if (job.is_main())
        std::cout << "training on " << train.dataset().size() << " images, testing on " << test.dataset().size()
                  << ", batch " << flags.batch_size << ", " << tg::get_num_threads() << " threads"
                  << (!flags.bf16                       ? ""
                      : tg::autocast_is_accelerated() ? ", bfloat16 autocast"
                                                        : ", bfloat16 autocast (not accelerated on this processor)")
                  << (job.size > 1 ? " x " + std::to_string(job.size) + " ranks (batch " +
                                         std::to_string(flags.batch_size / job.size) + " each)"
                                   : std::string())
                  << "\n";

    double accuracy = curve.empty() ? 0.0 : curve.back().test_accuracy;
    std::optional<tg::Profiler> profiler;
    std::string memory;  // the allocator's summary at the end of the last profiled forward
    auto report_profile = [&profiler, &memory](tg::Profiler& p, const std::string& dir) {
        p.stop();
        tg::allocator().set_tracking(false);
        if (memory.empty()) memory = tg::allocator().stats().summary();
        std::cerr << "\n" << p.table() << "\nmemory (at the end of the last profiled forward pass): " << memory;
        p.write_chrome_trace(dir + "/trace.json");
        std::cerr << "wrote " << dir << "/trace.json (open it in chrome://tracing or ui.perfetto.dev)\n";
        profiler.reset();
    };
    for (int64_t epoch = first_epoch; epoch <= flags.epochs; ++epoch) {
        // Each epoch's shuffling and dropout masks depend on (seed, epoch) only, so a resumed run
        // draws what an uninterrupted one would. Each rank draws its own dropout masks.
        train.generator().manual_seed(flags.seed * 1000003 + static_cast<uint64_t>(epoch));
#ifdef TAPEGRAD_HAVE_MPI
        if (train_shards) train_shards->set_epoch(epoch);
#endif
        model->drop->generator.manual_seed(flags.seed * 1000033 + static_cast<uint64_t>(epoch) +
                                           static_cast<uint64_t>(job.rank) * 1000000007);
        if (schedule) schedule->set_epoch(epoch - 1);
        std::optional<nn::ProgressBar> bar;
        if (job.is_main())
            bar.emplace("epoch " + std::to_string(epoch) + "/" + std::to_string(flags.epochs), train.num_batches(), std::cerr);
        const auto start = std::chrono::steady_clock::now();
        double loss_sum = 0;
        int64_t steps = 0, images = 0;
        std::string status;
        for (const nn::Batch& batch : train) {
            const bool first_step = epoch == first_epoch && steps == 0;
            // Distributed, rank 0 alone profiles and writes the graph.
            if (first_step && flags.profile_steps > 0 && job.is_main()) {
                profiler.emplace();
                tg::allocator().set_tracking(true);
            }
            Tensor loss;
            {
                const tg::AutocastGuard autocast(tg::kBFloat16, flags.bf16);
                loss = tg::cross_entropy(net->forward(batch.images), batch.labels);
            }
            if (first_step && flags.graph && job.is_main()) write_graph(loss, *model, flags.out);
            if (profiler && epoch == first_epoch && steps + 1 == flags.profile_steps) memory = tg::allocator().stats().summary();
            optimizer.zero_grad();
            loss.backward();
            after_backward();
            optimizer.step();
            if (profiler && epoch == first_epoch && steps + 1 == flags.profile_steps) report_profile(*profiler, flags.out);
            loss_sum += loss.item();
            ++steps;
            images += batch.labels.numel() * job.size;
            const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            status = "loss " + fixed(loss_sum / steps, 4) + "  " + fixed(images / elapsed, 0) + " img/s";
            if (bar) bar->update(steps, status);
        }
        if (profiler) report_profile(*profiler, flags.out);  // the epoch had fewer steps than --profile
        if (bar) bar->finish(status);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::vector<double> losses{loss_sum, static_cast<double>(steps)};
        job.sum_over_ranks(losses);
        const double train_loss = losses[0] / losses[1];
        const TestResult result = [&] {
            const tg::AutocastGuard autocast(tg::kBFloat16, flags.bf16);
            return evaluate(*net, test, job);
        }();
        accuracy = result.accuracy;
        curve.push_back({epoch, train_loss, accuracy, seconds});
        if (job.is_main()) {
            std::cout << "epoch " << epoch << ": train loss " << fixed(train_loss, 4) << ", test loss "
                      << fixed(result.loss, 4) << ", test accuracy " << fixed(accuracy, 4) << ", " << fixed(seconds, 1)
                      << " s" << job.communication_note() << std::endl;
            nn::save_checkpoint(checkpoint, *model, &optimizer, epoch);
            nn::write_curve_csv(csv, curve);
            nn::write_curve_svg(svg, curve, "SmallCNN on Fashion-MNIST");
        }
    }
    if (first_epoch > flags.epochs) accuracy = evaluate(*net, test, job).accuracy;
    if (job.is_main()) std::cout << "test accuracy: " << fixed(accuracy, 4) << std::endl;
    return 0;
}

int main(int argc, char** argv) {
    const Flags flags = parse_flags(argc, argv);
    const BatchNormFactory batch_norm = [](int64_t channels) { return std::make_shared<nn::BatchNorm2d>(channels); };
    if (!flags.distributed) {
        try {
            return train(flags, Job{}, batch_norm, [](std::shared_ptr<SmallCNN> m) { return m; }, [] {});
        } catch (const std::exception& e) {
            std::cerr << "train_fashion_mnist: error: " << e.what() << "\n";
            return 1;
        }
    }
#ifdef TAPEGRAD_HAVE_MPI
    dist::ProcessGroup& group = dist::ProcessGroup::world();
    try {
        std::shared_ptr<dist::DistributedDataParallel> ddp;
        double waited = 0;  // the reducer's wait time at the end of the previous epoch
        Job job{.rank = group.rank(),
                .size = group.size(),
                .sum_over_ranks = [&group](std::vector<double>& values) { group.all_reduce_sum(values); },
                .communication_note = [&] {
                    const double total = ddp->stats().wait_seconds, epoch = total - waited;
                    waited = total;
                    return " (" + std::to_string(ddp->bucket_layout().size()) + " gradient buckets, " +
                           fixed(epoch, 2) + " s waiting for all-reduces on rank 0)";
                }};
        const BatchNormFactory sync_batch_norm = [&group](int64_t channels) {
            return std::make_shared<dist::SyncBatchNorm>(channels, nn::BatchNormConfig{}, group);
        };
        return train(
            flags, job, flags.sync_batchnorm ? sync_batch_norm : batch_norm,
            [&](std::shared_ptr<SmallCNN> model) {
                ddp = std::make_shared<dist::DistributedDataParallel>(
                    model, dist::DataParallelOptions{.bucket_cap_mb = flags.bucket_mb,
                                                     .overlap_with_backward = !flags.reduce_after_backward},
                    group);
                return ddp;
            },
            [&] { ddp->synchronize(); });
    } catch (const std::exception& e) {
        // Stops every rank with the message; the others would otherwise wait for this one forever.
        group.abort(std::string("train_fashion_mnist: ") + e.what());
    }
#endif
    return 1;
}
