// Reliability: one table of bad calls to every public op, module, optimizer, loader and engine entry
// point (each must throw the expected exception type with a message naming the op, and leave its
// arguments untouched), and the numerics that must not blow up (cross_entropy at +-1e4, batch norm
// of a constant channel, anomaly mode naming the op).
#include <doctest/doctest.h>

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "engine/autograd.hpp"
#include "ops/kernels/kernel_choice.hpp"
#include "engine/generator.hpp"
#include "engine/threads.hpp"
#include "nn/data.hpp"
#include "nn/layers.hpp"
#include "nn/optim.hpp"
#include "nn/serialize.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/batch_norm.hpp"
#include "ops/conv.hpp"
#include "ops/dropout.hpp"
#include "ops/linear.hpp"
#include "ops/loss.hpp"
#include "ops/pooling.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace fs = std::filesystem;
using tg::Tensor;
using tapegrad::testing::TempDir;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// One bad call: what it does, the call, the exception type it must throw and a substring of the
// message (the op's name).
struct BadCall {
    std::string what;
    std::function<void()> call;
    const std::type_info* type;
    std::function<bool(const std::exception&)> is_expected;
    std::string message;
};

template <class E>
BadCall bad(std::string what, std::string message, std::function<void()> call) {
    return {std::move(what), std::move(call), &typeid(E),
            [](const std::exception& e) { return dynamic_cast<const E*>(&e) != nullptr; }, std::move(message)};
}

// The bytes, shape, strides, requires_grad and gradient of a tensor, to prove a failed call did not
// touch its arguments.
struct Snapshot {
    Tensor t;
    std::vector<uint8_t> bytes;
    tg::Shape shape;
    tg::Strides strides;
    bool requires_grad;
    bool has_grad;

    explicit Snapshot(const Tensor& t_) : t(t_), shape(t_.shape()), strides(t_.strides()), requires_grad(t_.requires_grad()) {
        const Tensor dense = t_.detach().contiguous();
        const auto* p = static_cast<const uint8_t*>(dense.data_ptr());
        bytes.assign(p, p + dense.numel() * tg::element_size(dense.dtype()));
        has_grad = t_.grad().defined();
    }
    bool unchanged() const {
        const Tensor dense = t.detach().contiguous();
        return t.shape() == shape && t.strides() == strides && t.requires_grad() == requires_grad &&
               t.grad().defined() == has_grad &&
               (bytes.empty() || std::memcmp(dense.data_ptr(), bytes.data(), bytes.size()) == 0);
    }
};

Tensor randn(const tg::Shape& shape, uint64_t seed, bool requires_grad = false, tg::DType dtype = tg::kFloat32) {
    tg::Generator gen(seed);
    return tg::randn(shape, gen, {.dtype = dtype, .requires_grad = requires_grad});
}

// A checkpoint with one float32 entry "e" of the given dims and no data, with a valid checksum.
std::vector<uint8_t> checkpoint_with_dims(const std::vector<int64_t>& dims) {
    std::vector<uint8_t> payload;
    auto put = [](std::vector<uint8_t>& out, const void* p, std::size_t n) {
        out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    const uint32_t name_len = 1;
    const uint8_t dtype = 0, ndim = static_cast<uint8_t>(dims.size());
    put(payload, &name_len, 4);
    payload.push_back('e');
    put(payload, &dtype, 1);
    put(payload, &ndim, 1);
    for (int64_t d : dims) put(payload, &d, 8);
    std::vector<uint8_t> out = {'T', 'A', 'P', 'E', 'G', 'R', 'A', 'D'};
    const uint32_t version = 1, count = 1;
    const uint64_t size = payload.size();
    const uint32_t crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), payload.data(), static_cast<uInt>(payload.size())));
    put(out, &version, 4);
    put(out, &count, 4);
    put(out, &size, 8);
    put(out, &crc, 4);
    put(out, payload.data(), payload.size());
    return out;
}

}  // namespace

TEST_CASE("bad calls to every op, module, optimizer, loader and engine entry throw naming the op") {
    // The arguments every row draws from; none of them may change when a call fails.
    const Tensor x4 = randn({2, 3, 8, 8}, 1, true);             // an image batch
    const Tensor w4 = randn({4, 3, 3, 3}, 2, true);             // conv weight for 3 channels
    const Tensor b4 = randn({4}, 3, true);                      // conv bias
    const Tensor x3 = randn({3, 8, 8}, 4, true);                // an image without its batch dimension
    const Tensor m2 = randn({4, 5}, 5, true);                   // a matrix / logits for 5 classes
    const Tensor m2b = randn({6, 7}, 6, true);                  // a matrix that fits nothing
    const Tensor v5 = randn({5}, 7, true);                      // a vector
    const Tensor f64 = randn({4, 5}, 8, true, tg::kFloat64);    // the same shape in float64
    const Tensor empty_batch = tg::zeros({0, 3, 8, 8});         // no images
    const Tensor empty_plane = tg::zeros({2, 3, 0, 8});         // images without pixels
    const Tensor no_channels = tg::zeros({4, 0});               // [N, C] with C = 0
    const Tensor gamma = tg::ones({3}, {.requires_grad = true});
    const Tensor beta = tg::zeros({3}, {.requires_grad = true});
    const Tensor running_mean = tg::zeros({3});
    const Tensor running_var = tg::ones({3});
    const Tensor wrong_c = tg::ones({4});                       // per-channel, for 4 channels
    const Tensor nan_logits = tg::tensor({{1.0, kNaN, 0.0}, {0.5, 0.5, 0.5}}, {.requires_grad = true});
    const Tensor inf_input = tg::tensor({1.0, kInf, -2.0}, {.requires_grad = true});
    const Tensor negative = tg::tensor({1.0, -1.0, 2.0}, {.requires_grad = true});
    const Tensor inf_column = tg::from_vector(std::vector<double>{1.0, kInf, -2.0}, {3, 1}, {.dtype = tg::kFloat32, .requires_grad = true});
    const Tensor huge = tg::tensor({1e20, 0.0, 1.0}, {.requires_grad = true});  // squares overflow float32
    const Tensor zeros3 = tg::zeros({3});
    const Tensor big = tg::tensor({1000.0, 0.0}, {.requires_grad = true});
    const Tensor transposed = m2.detach().transpose(0, 1);      // [5,4], not row-major
    std::vector<Tensor> args = {x4, w4, b4, x3, m2, m2b, v5, f64, empty_batch, empty_plane, no_channels, gamma, beta,
                                running_mean, running_var, wrong_c, nan_logits, inf_input, inf_column, huge, negative, zeros3, big,
                                transposed};

    tg::Generator gen(11);
    const std::vector<int64_t> labels4 = {0, 1, 2, 4};
    const TempDir dir("bad_loader");
    std::ofstream(dir.path / "train-images-idx3-ubyte") << "this is not an IDX file";
    std::ofstream(dir.path / "train-labels-idx1-ubyte") << "nor is this";
    auto conv_layer = std::make_shared<nn::Conv2d>(3, 4, 3, gen);
    auto linear_layer = std::make_shared<nn::Linear>(5, 2, gen);
    auto bn_layer = std::make_shared<nn::BatchNorm2d>(3);
    for (const auto& m : {std::static_pointer_cast<nn::Module>(conv_layer), std::static_pointer_cast<nn::Module>(linear_layer),
                          std::static_pointer_cast<nn::Module>(bn_layer)})
        for (const auto& [name, t] : m->state_dict()) args.push_back(t);
    auto params = [] { return std::vector<Tensor>{tg::ones({2}, {.requires_grad = true})}; };
    auto anomaly = [](const std::function<void()>& f) {
        tg::AnomalyModeGuard guard;
        f();
    };

    using IA = std::invalid_argument;
    using RE = std::runtime_error;
    using AE = tg::AnomalyError;
    const std::vector<BadCall> table = {
        // ---- conv2d
        bad<IA>("conv2d on a 2-D input", "conv2d", [&] { tg::conv2d(m2, w4, b4); }),
        bad<IA>("conv2d with a 3-D weight", "conv2d", [&] { tg::conv2d(x4, w4.detach().reshape({4, 3, 9}), b4); }),
        bad<IA>("conv2d with a channel mismatch", "conv2d", [&] { tg::conv2d(x4, randn({4, 2, 3, 3}, 9)); }),
        bad<IA>("conv2d with a bias of the wrong size", "conv2d", [&] { tg::conv2d(x4, w4, v5); }),
        bad<IA>("conv2d with stride 0", "conv2d", [&] { tg::conv2d(x4, w4, b4, {.stride = 0}); }),
        bad<IA>("conv2d with negative padding", "conv2d", [&] { tg::conv2d(x4, w4, b4, {.padding = -1}); }),
        bad<IA>("conv2d with dilation 0", "conv2d", [&] { tg::conv2d(x4, w4, b4, {.dilation = 0}); }),
        bad<IA>("conv2d with groups not dividing the channels", "conv2d",
                [&] { tg::conv2d(x4, randn({4, 1, 3, 3}, 9), Tensor(), {.groups = 2}); }),
        bad<IA>("conv2d with a kernel larger than the input", "conv2d", [&] { tg::conv2d(x4, randn({4, 3, 9, 9}, 9)); }),
        bad<IA>("conv2d on an empty batch", "conv2d", [&] { tg::conv2d(empty_batch, w4, b4); }),
        bad<IA>("conv2d with a float64 weight", "conv2d", [&] { tg::conv2d(x4, w4.to(tg::kFloat64)); }),
        bad<IA>("conv2d with an undefined weight", "conv2d", [&] { tg::conv2d(x4, Tensor()); }),
        // ---- pooling
        bad<IA>("max_pool2d on a 2-D input", "max_pool2d", [&] { tg::max_pool2d(m2, {.kernel_size = 2}); }),
        bad<IA>("max_pool2d with kernel 0", "max_pool2d", [&] { tg::max_pool2d(x4, {.kernel_size = 0}); }),
        bad<IA>("max_pool2d with padding over half the kernel", "max_pool2d",
                [&] { tg::max_pool2d(x4, {.kernel_size = 2, .padding = 2}); }),
        bad<IA>("max_pool2d with a kernel larger than the input", "max_pool2d", [&] { tg::max_pool2d(x4, {.kernel_size = 9}); }),
        bad<IA>("max_pool2d on empty planes", "max_pool2d", [&] { tg::max_pool2d(empty_plane, {.kernel_size = 2}); }),
        bad<IA>("avg_pool2d with stride 0", "avg_pool2d", [&] { tg::avg_pool2d(x4, {.kernel_size = 2, .stride = tg::Pair(0)}); }),
        bad<IA>("avg_pool2d on a 2-D input", "avg_pool2d", [&] { tg::avg_pool2d(m2, {.kernel_size = 2}); }),
        bad<IA>("avg_pool2d with negative padding", "avg_pool2d", [&] { tg::avg_pool2d(x4, {.kernel_size = 2, .padding = -1}); }),
        bad<IA>("adaptive_avg_pool2d to size 0", "adaptive_avg_pool2d", [&] { tg::adaptive_avg_pool2d(x4, 0); }),
        bad<IA>("adaptive_avg_pool2d of planes without pixels", "adaptive_avg_pool2d",
                [&] { tg::adaptive_avg_pool2d(empty_plane, 1); }),
        bad<IA>("adaptive_avg_pool2d on a 2-D input", "adaptive_avg_pool2d", [&] { tg::adaptive_avg_pool2d(m2, 1); }),
        bad<IA>("max_unpool2d with an index past the output plane", "max_unpool2d",
                [&] { tg::max_unpool2d(x4, tg::full({2, 3, 8, 8}, 256, {.dtype = tg::kInt64}), {.kernel_size = 2}); }),
        // ---- activations: they accept NaN and Inf as PyTorch does; anomaly mode names the op
        bad<IA>("relu of an undefined tensor", "relu", [&] { tg::relu(Tensor()); }),
        bad<IA>("sigmoid of an undefined tensor", "sigmoid", [&] { tg::sigmoid(Tensor()); }),
        bad<AE>("sigmoid of NaN, backward under anomaly mode", "the backward of 'sigmoid'",
                [&] { anomaly([&] { tg::sigmoid(nan_logits).sum().backward(); }); }),
        bad<AE>("tanh of NaN, backward under anomaly mode", "the backward of 'tanh'",
                [&] { anomaly([&] { tg::tanh(nan_logits).sum().backward(); }); }),
        bad<AE>("exp overflowing to Inf, backward under anomaly mode", "the backward of 'exp'",
                [&] { anomaly([&] { tg::exp(big).sum().backward(); }); }),
        bad<AE>("log of zero, backward under anomaly mode", "the backward of 'log'",
                [&] { anomaly([&] { tg::log(zeros3.detach().requires_grad_()).sum().backward(); }); }),
        bad<AE>("sqrt of a negative number, backward under anomaly mode", "the backward of 'sqrt'",
                [&] { anomaly([&] { tg::sqrt(negative).sum().backward(); }); }),
        // ---- batch_norm
        bad<IA>("batch_norm on a 3-D input", "batch_norm",
                [&] { tg::batch_norm(x3, running_mean, running_var, gamma, beta); }),
        bad<IA>("batch_norm with a weight for 4 channels", "batch_norm",
                [&] { tg::batch_norm(x4, running_mean, running_var, wrong_c, beta); }),
        bad<IA>("batch_norm with running stats for 4 channels", "batch_norm",
                [&] { tg::batch_norm(x4, wrong_c, wrong_c, gamma, beta); }),
        bad<IA>("batch_norm with running_mean but no running_var", "batch_norm",
                [&] { tg::batch_norm(x4, running_mean, Tensor(), gamma, beta); }),
        bad<IA>("batch_norm in eval mode without running stats", "batch_norm",
                [&] { tg::batch_norm(x4, Tensor(), Tensor(), gamma, beta, {.training = false}); }),
        bad<IA>("batch_norm training on one value per channel", "batch_norm",
                [&] { tg::batch_norm(tg::ones({1, 3}), running_mean, running_var, gamma, beta); }),
        bad<IA>("batch_norm with eps 0", "batch_norm",
                [&] { tg::batch_norm(x4, running_mean, running_var, gamma, beta, {.eps = 0}); }),
        bad<IA>("batch_norm with a float64 weight", "batch_norm",
                [&] { tg::batch_norm(x4, running_mean, running_var, gamma.to(tg::kFloat64), beta); }),
        bad<IA>("batch_norm on an input without channels", "batch_norm",
                [&] { tg::batch_norm(no_channels, Tensor(), Tensor(), Tensor(), Tensor()); }),
        bad<AE>("batch_norm of an Inf, backward under anomaly mode", "the backward of 'batch_norm'", [&] {
            anomaly([&] { tg::batch_norm(inf_column, Tensor(), Tensor(), Tensor(), Tensor()).sum().backward(); });
        }),
        // ---- matmul and linear
        bad<IA>("matmul of a vector", "matmul", [&] { tg::matmul(v5, m2); }),
        bad<IA>("matmul with inner dimensions 5 and 6", "matmul", [&] { tg::matmul(m2, m2b); }),
        bad<IA>("matmul of float32 and float64", "matmul", [&] { tg::matmul(m2, f64.transpose(0, 1)); }),
        bad<IA>("matmul with batch 2 against batch 3", "matmul", [&] { tg::matmul(randn({2, 4, 5}, 9), randn({3, 5, 2}, 9)); }),
        bad<IA>("linear with a 1-D weight", "linear", [&] { tg::linear(m2, v5); }),
        bad<IA>("linear with 5 inputs against a weight for 7", "linear", [&] { tg::linear(m2, m2b); }),
        bad<IA>("linear with a bias of the wrong size", "linear", [&] { tg::linear(m2, randn({3, 5}, 9), v5); }),
        bad<IA>("linear with a float64 weight", "linear", [&] { tg::linear(m2, f64); }),
        // ---- arithmetic
        bad<IA>("add of [4,5] and [6,7]", "add", [&] { tg::add(m2, m2b); }),
        bad<IA>("sub of [4,5] and [6,7]", "sub", [&] { tg::sub(m2, m2b); }),
        bad<IA>("mul of [4,5] and [6,7]", "mul", [&] { tg::mul(m2, m2b); }),
        bad<IA>("div of [4,5] and [6,7]", "div", [&] { tg::div(m2, m2b); }),
        bad<IA>("add_ of a float32 tensor into an int64 one", "add_: the [4,5] int64 tensor and the [4,5] float32 tensor",
                [&] { tg::zeros({4, 5}, {.dtype = tg::kInt64}).add_(m2); }),
        bad<IA>("mul with an undefined operand", "mul", [&] { tg::mul(m2, Tensor()); }),
        bad<AE>("div by zero, backward under anomaly mode", "the backward of 'div'",
                [&] { anomaly([&] { tg::div(negative, zeros3).sum().backward(); }); }),
        bad<AE>("mul by Inf, backward under anomaly mode", "the backward of 'mul'",
                [&] { anomaly([&] { tg::mul(inf_input, negative).sum().backward(); }); }),
        // ---- reductions
        bad<IA>("sum over axis 2 of a matrix", "sum", [&] { tg::sum(m2, {2}); }),
        bad<IA>("sum over the same axis twice", "sum", [&] { tg::sum(m2, {0, -2}); }),
        bad<IA>("mean over axis 1 of a scalar", "mean", [&] { tg::mean(tg::scalar_tensor(1.0), {1}); }),
        bad<IA>("mean over axis -3 of a matrix", "mean", [&] { tg::mean(m2, {-3}); }),
        bad<IA>("max over axis 2 of a matrix", "max", [&] { tg::max(m2, 2); }),
        bad<IA>("max over an empty axis", "max", [&] { tg::max(no_channels, 1); }),
        // ---- views
        bad<IA>("reshape of 20 elements to [3,7]", "reshape", [&] { tg::reshape(m2, {3, 7}); }),
        bad<IA>("reshape with two -1", "reshape", [&] { tg::reshape(m2, {-1, -1}); }),
        bad<IA>("view of a transposed tensor", "view", [&] { tg::view(transposed, {20}); }),
        bad<IA>("view to a negative size", "view", [&] { tg::view(m2, {-2, -10}); }),
        bad<IA>("transpose of axis 2 of a matrix", "transpose", [&] { tg::transpose(m2, 0, 2); }),
        bad<IA>("permute with a repeated axis", "permute", [&] { tg::permute(m2, {0, 0}); }),
        bad<IA>("flatten with start after end", "flatten", [&] { tg::flatten(x4, 2, 1); }),
        // ---- softmax and losses
        bad<IA>("softmax over axis 1 of a scalar", "softmax", [&] { tg::softmax(tg::scalar_tensor(1.0), 1); }),
        bad<IA>("softmax over axis 2 of a matrix", "softmax", [&] { tg::softmax(m2, 2); }),
        bad<IA>("log_softmax over axis -3 of a matrix", "log_softmax", [&] { tg::log_softmax(m2, -3); }),
        bad<IA>("cross_entropy of 1-D logits", "cross_entropy", [&] { tg::cross_entropy(v5, std::vector<int64_t>{0}); }),
        bad<IA>("cross_entropy with 3 labels for 4 rows", "cross_entropy", [&] { tg::cross_entropy(m2, {0, 1, 2}); }),
        bad<IA>("cross_entropy with label 5 of 5 classes", "cross_entropy", [&] { tg::cross_entropy(m2, {0, 1, 2, 5}); }),
        bad<IA>("cross_entropy with a negative label", "cross_entropy", [&] { tg::cross_entropy(m2, {0, -1, 2, 3}); }),
        bad<AE>("cross_entropy of NaN logits, backward under anomaly mode", "the backward of 'cross_entropy'",
                [&] { anomaly([&] { tg::cross_entropy(nan_logits, {0, 1}).backward(); }); }),
        bad<IA>("nll_loss of 4-D log-probabilities", "nll_loss", [&] { tg::nll_loss(x4, {0, 1}); }),
        bad<IA>("nll_loss with label 5 of 5 classes", "nll_loss", [&] { tg::nll_loss(m2, {5, 0, 0, 0}); }),
        bad<IA>("mse_loss of [4,5] against [5]", "mse_loss", [&] { tg::mse_loss(m2, v5); }),
        bad<IA>("mse_loss of int64 against int64", "mse_loss", [&] { tg::mse_loss(m2.to(tg::kInt64), m2.to(tg::kInt64)); }),
        // ---- dropout
        bad<IA>("dropout with p = 1.5", "dropout", [&] { tg::dropout(m2, 1.5, true, gen); }),
        bad<IA>("dropout with p = -0.1", "dropout", [&] { tg::dropout(m2, -0.1, true, gen); }),
        bad<IA>("dropout with p = NaN", "dropout", [&] { tg::dropout(m2, kNaN, true, gen); }),
        // ---- modules
        bad<IA>("Conv2d forward on a 2-D input", "conv2d", [&] { conv_layer->forward(m2); }),
        bad<IA>("Conv2d forward on 5 channels", "conv2d", [&] { conv_layer->forward(randn({1, 5, 8, 8}, 9)); }),
        bad<IA>("Conv2d with 0 output channels", "Conv2d", [&] { nn::Conv2d(3, 0, 3, gen); }),
        bad<IA>("Linear forward on 7 features", "linear", [&] { linear_layer->forward(m2b); }),
        bad<IA>("Linear with 0 inputs", "Linear", [&] { nn::Linear(0, 2, gen); }),
        bad<IA>("BatchNorm2d forward on a 2-D input", "BatchNorm2d", [&] { bn_layer->forward(m2); }),
        bad<IA>("BatchNorm2d forward on 4 channels", "batch_norm", [&] { bn_layer->forward(randn({2, 4, 3, 3}, 9)); }),
        bad<IA>("load_state_dict with a [3,5] weight into Linear(5,2)", "load_state_dict", [&] {
            linear_layer->load_state_dict({{"weight", randn({3, 5}, 9)}, {"bias", randn({2}, 9)}});
        }),
        bad<IA>("load_state_dict without the bias", "load_state_dict", [&] {
            linear_layer->load_state_dict({{"weight", randn({2, 5}, 9)}});
        }),
        bad<IA>("load_state_dict with an unknown key", "load_state_dict", [&] {
            conv_layer->load_state_dict({{"weight", randn({4, 3, 3, 3}, 9)}, {"bias", randn({4}, 9)}, {"scale", v5}});
        }),
        bad<IA>("Dropout with p = 1.5", "Dropout", [&] { nn::Dropout(1.5); }),
        // ---- optimizers
        bad<IA>("SGD with a negative learning rate", "SGD", [&] { nn::SGD(params(), {.lr = -1}); }),
        bad<IA>("SGD with nesterov and no momentum", "SGD", [&] { nn::SGD(params(), {.lr = 0.1, .nesterov = true}); }),
        bad<IA>("SGD with a NaN learning rate", "SGD", [&] { nn::SGD(params(), {.lr = kNaN}); }),
        bad<IA>("Adam with beta1 = 1", "Adam", [&] { nn::Adam(params(), {.beta1 = 1.0}); }),
        bad<IA>("Adam with a negative eps", "Adam", [&] { nn::Adam(params(), {.eps = -1}); }),
        bad<IA>("AdamW with a negative weight decay", "AdamW", [&] { nn::AdamW(params(), {.weight_decay = -0.1}); }),
        bad<IA>("Adam with no parameters", "Adam", [&] { nn::Adam({}); }),
        bad<IA>("SGD over a tensor computed by an op", "SGD", [&] { nn::SGD({params()[0] * 2.0}, {.lr = 0.1}); }),
        bad<IA>("set_lr to a negative value", "SGD", [&] { nn::SGD(params(), {.lr = 0.1}).set_lr(-1); }),
        // ---- data
        bad<RE>("load_mnist of a missing directory", "does not exist",
                [&] { nn::load_mnist((dir.path / "missing").string(), nn::Split::Train); }),
        bad<RE>("load_mnist of a directory of garbage files", "train-images-idx3-ubyte",
                [&] { nn::load_mnist(dir.path.string(), nn::Split::Train); }),
        bad<RE>("load_mnist of a directory without test files", "t10k-images-idx3-ubyte",
                [&] { nn::load_mnist(dir.path.string(), nn::Split::Test); }),
        bad<IA>("DataLoader with batch size 0", "DataLoader", [&] {
            nn::ImageDataset d;
            d.count = 1, d.rows = 1, d.cols = 1, d.pixels = {7}, d.labels = {0};
            nn::DataLoader(d, {.batch_size = 0});
        }),
        // ---- checkpoints (found by fuzzing: an empty tensor whose other dimensions overflow its strides)
        bad<RE>("deserialize of an empty [0, 2^32, 2^32] tensor", "checkpoint", [&] {
            const auto bytes = checkpoint_with_dims({0, int64_t{1} << 32, int64_t{1} << 32});
            nn::deserialize(bytes.data(), bytes.size());
        }),
        bad<RE>("deserialize of a [2, 3] tensor without its data", "checkpoint", [&] {
            const auto bytes = checkpoint_with_dims({2, 3});
            nn::deserialize(bytes.data(), bytes.size());
        }),
        // ---- engine
        bad<IA>("backward from a non-scalar without grad_output", "backward", [&] { (m2 * 2.0).backward(); }),
        bad<IA>("backward twice without retain_graph", "backward", [&] {
            Tensor y = tg::exp(tg::ones({2}, {.requires_grad = true})).sum();
            y.backward();
            y.backward();
        }),
        bad<IA>("backward on a tensor that does not require grad", "backward", [&] { tg::ones({1}).backward(); }),
        bad<IA>("backward with a grad_output of the wrong shape", "backward", [&] { (m2 * 2.0).backward(tg::ones({5, 4})); }),
        bad<IA>("grad() for an input the output does not use", "grad", [&] { tg::grad({(m2 * 2.0).sum()}, {v5}); }),
        bad<IA>("set_num_threads(0)", "set_num_threads", [&] { tg::set_num_threads(0); }),
        bad<AE>("backward making NaN under anomaly mode", "'sqrt'", [&] {
            anomaly([&] { tg::sqrt(zeros3.detach().requires_grad_()).sum().backward(); });
        }),
    };

    // The gradients seen by every argument before the table runs (the engine rows must commit none).
    for (Tensor& t : args) t.zero_grad();
    std::vector<Snapshot> before;
    for (const Tensor& t : args) before.emplace_back(t);
    const int64_t nodes_before = tg::Node::live_count();
    for (const BadCall& row : table) {
        CAPTURE(row.what);
        std::string got = "no exception";
        bool expected_type = false;
        try {
            row.call();
        } catch (const std::exception& e) {
            got = std::string(typeid(e).name()) + ": " + e.what();
            expected_type = row.is_expected(e);
        }
        INFO("expected ", std::string(row.type->name()), " containing '", row.message, "', got ", got);
        CHECK(expected_type);
        CHECK(got.find(row.message) != std::string::npos);
        for (std::size_t i = 0; i < before.size(); ++i) {
            CAPTURE(i);
            CHECK(before[i].unchanged());
        }
        CHECK(tg::Node::live_count() == nodes_before);  // a failed call leaves no graph behind
    }
    CHECK_FALSE(tg::is_anomaly_enabled());
    CHECK(table.size() >= 60);
    MESSAGE("bad-input table: ", table.size(), " cases");
}

TEST_CASE("anomaly mode lets NaN and Inf through forward, and gradients that stay finite through backward") {
    tg::AnomalyModeGuard anomaly;
    // Each forward makes NaN or Inf; PyTorch's detect_anomaly checks only what backward computes,
    // and here every gradient is finite.
    const Tensor negative = tg::tensor({1.0, -1.0, 2.0}, {.requires_grad = true});
    const Tensor inf_input = tg::tensor({1.0, kInf, -2.0}, {.requires_grad = true});
    const Tensor huge = tg::tensor({1e20, 0.0, 1.0}, {.requires_grad = true});  // squares overflow float32
    const Tensor log_negative = tg::log(negative);
    CHECK(std::isnan(log_negative.at({1})));
    log_negative.sum().backward();  // d log(x) / dx = 1/x = -1 there
    CHECK(negative.grad().at({1}) == -1.0);
    const Tensor inf_sum = tg::sum(inf_input);
    CHECK(std::isinf(inf_sum.item()));
    inf_sum.backward();  // d sum / dx = 1
    CHECK(inf_input.grad().at({1}) == 1.0);
    const Tensor mse = tg::mse_loss(huge, tg::zeros({3}));
    CHECK(std::isinf(mse.item()));
    mse.backward();  // 2 (x - y) / 3
    CHECK(huge.grad().at({0}) == doctest::Approx(2e20 / 3).epsilon(1e-6));
    CHECK(std::isnan(tg::mul(inf_input, tg::zeros({3})).at({1})));  // Inf * 0
}

TEST_CASE("NaN and Inf pass through ops as in PyTorch when anomaly mode is off") {
    // cross_entropy of a NaN logit is NaN for that row (PyTorch does the same), and finite elsewhere.
    const Tensor logits = tg::tensor({{1.0, kNaN, 0.0}, {0.5, 0.5, 0.5}}, {.requires_grad = true});
    const Tensor per_row = tg::cross_entropy(logits, {0, 1}, tg::Reduction::None);
    CHECK(std::isnan(per_row.at({0})));
    CHECK(per_row.at({1}) == doctest::Approx(std::log(3.0)));
    CHECK(std::isnan(tg::cross_entropy(logits, {0, 1}).item()));
    CHECK(std::isnan(tg::sigmoid(logits).at({0, 1})));
    CHECK(std::isnan(tg::log(tg::tensor({-1.0})).item()));
    CHECK(std::isinf(tg::exp(tg::tensor({1000.0})).item()));
    CHECK(tg::tanh(tg::tensor({kInf})).item() == 1.0);
    CHECK(tg::sigmoid(tg::tensor({-kInf})).item() == 0.0);
}

// ---------------------------------------------------------------- numerics

TEST_CASE("cross_entropy stays finite for logits of +-1e4, forward and gradient, fast and reference") {
    for (const bool reference : {false, true}) {
        for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
            CAPTURE(reference);
            CAPTURE(std::string(tg::dtype_name(dtype)));
            tg::ReferenceKernelsGuard guard(reference);
            Tensor logits = tg::tensor({{1e4, -1e4, 0.0}, {-1e4, -1e4, -1e4}, {1e4, 1e4, -1e4}},
                                       {.dtype = dtype, .requires_grad = true});
            const std::vector<int64_t> labels = {1, 2, 0};
            Tensor loss = tg::cross_entropy(logits, labels, tg::Reduction::Sum);
            // Row 0: logsumexp = 1e4, so the loss is 1e4 - (-1e4); row 1: log 3; row 2: log 2.
            CHECK(std::isfinite(loss.item()));
            CHECK(loss.item() == doctest::Approx(2e4 + std::log(3.0) + std::log(2.0)).epsilon(1e-6));
            // log_softmax keeps the same precision: x - max - log(sum).
            const std::vector<double> lsm = tg::log_softmax(logits.detach()).to(tg::kFloat64).to_vector<double>();
            CHECK(lsm[0] == doctest::Approx(0.0));
            CHECK(lsm[1] == doctest::Approx(-2e4));
            CHECK(lsm[3] == doctest::Approx(-std::log(3.0)).epsilon(1e-6));
            CHECK(lsm[6] == doctest::Approx(-std::log(2.0)).epsilon(1e-6));
            loss.backward();
            const Tensor g = logits.grad();
            // softmax - onehot: row 0 [1, -1, 0], row 1 [1/3, 1/3, -2/3], row 2 [-1/2, 1/2, 0].
            const std::vector<double> want = {1, -1, 0, 1.0 / 3, 1.0 / 3, -2.0 / 3, -0.5, 0.5, 0};
            const std::vector<double> got = g.to(tg::kFloat64).to_vector<double>();
            for (std::size_t i = 0; i < want.size(); ++i) {
                CHECK(std::isfinite(got[i]));
                CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
            }
        }
    }
}

TEST_CASE("batch_norm of a constant channel is finite forward and backward, in both layouts") {
    for (const bool reference : {false, true}) {
        for (const bool channels_last : {false, true}) {
            CAPTURE(reference);
            CAPTURE(channels_last);
            tg::ReferenceKernelsGuard guard(reference);
            // Channel 0 is constant, channel 1 varies.
            tg::Generator gen(5);
            std::vector<float> values = tg::randn({4, 2, 5, 5}, gen).to_vector<float>();
            auto constant = [](int64_t i) { return (i / 25) % 2 == 0; };
            for (int64_t i = 0; i < 200; ++i)
                if (constant(i)) values[static_cast<std::size_t>(i)] = 3.25f;
            Tensor x = tg::from_vector(values, {4, 2, 5, 5});
            if (channels_last) x = x.contiguous(tg::MemoryFormat::ChannelsLast);
            x.requires_grad_();
            Tensor gamma = tg::tensor({1.5, 0.5}, {.requires_grad = true});
            Tensor beta = tg::tensor({-2.0, 1.0}, {.requires_grad = true});
            Tensor running_mean = tg::zeros({2}), running_var = tg::ones({2});
            Tensor y = tg::batch_norm(x, running_mean, running_var, gamma, beta);
            const std::vector<float> out = y.contiguous().to_vector<float>();
            // The variance is 0, so invstd = 1/sqrt(eps) and xhat = 0: the output is beta.
            for (int64_t i = 0; i < 200; ++i) {
                CHECK(std::isfinite(out[static_cast<std::size_t>(i)]));
                if (constant(i)) CHECK(out[static_cast<std::size_t>(i)] == doctest::Approx(-2.0));
            }
            CHECK(running_mean.at({0}) == doctest::Approx(0.325));
            CHECK(running_var.at({0}) == doctest::Approx(0.9));
            tg::Generator g2(6);
            const Tensor g = tg::randn({4, 2, 5, 5}, g2);
            (y * g).sum().backward();
            for (const Tensor& grad : {x.grad(), gamma.grad(), beta.grad()})
                for (float v : grad.contiguous().to_vector<float>()) CHECK(std::isfinite(v));
            // xhat = 0 there: dgamma = 0, and dx = gamma invstd (g - mean g), large but exact.
            CHECK(gamma.grad().at({0}) == doctest::Approx(0.0));
            const std::vector<float> gv = g.to_vector<float>();
            double mean_g = 0;
            for (int64_t i = 0; i < 200; ++i)
                if (constant(i)) mean_g += gv[static_cast<std::size_t>(i)] / 100.0;
            const double scale = 1.5 / std::sqrt(1e-5);
            const std::vector<float> dx = x.grad().contiguous().to_vector<float>();
            for (int64_t i = 0; i < 200; ++i)
                if (constant(i))
                    CHECK(dx[static_cast<std::size_t>(i)] ==
                          doctest::Approx(scale * (gv[static_cast<std::size_t>(i)] - mean_g)).epsilon(1e-4));
        }
    }
}

TEST_CASE("anomaly mode names the op whose backward made NaN or Inf") {
    tg::AnomalyModeGuard anomaly;
    // Forward: log of a negative number inside a small model is NaN there, and no error.
    Tensor x = tg::tensor({0.5, -1.0, 2.0}, {.requires_grad = true});
    CHECK(std::isnan(tg::log(x * 2.0).sum().item()));
    // Backward: sqrt is finite at 0 but its gradient 1/(2 sqrt x) is not.
    Tensor z = tg::tensor({0.0, 4.0}, {.requires_grad = true});
    Tensor y = (tg::sqrt(z) * 3.0).sum();
    CHECK(y.item() == doctest::Approx(6.0));
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("the backward of 'sqrt'"), tg::AnomalyError);
    CHECK_FALSE(z.grad().defined());
    // Backward: div's gradient for the divisor, -a / b^2, overflows float32 where a / b does not.
    Tensor b = tg::tensor({1e-30, 1.0}, {.requires_grad = true});
    Tensor q = (tg::tensor({1.0, 2.0}) / b).sum();
    CHECK(std::isfinite(q.item()));
    CHECK_THROWS_WITH_AS(q.backward(), doctest::Contains("the backward of 'div'"), tg::AnomalyError);
    CHECK_FALSE(b.grad().defined());
}
