// The model ports of examples/models against PyTorch: torchvision's ResNet-18 (width 2),
// torchvision's MobileNetV2 (width 0.25, three setting rows) and a small U-Net load the weights
// and the batch that tests/models/make_reference.py wrote with PyTorch 1.13, run one training-mode
// forward and backward through cross_entropy, and must give PyTorch's logits, loss, every
// parameter's gradient and every batch-norm running statistic: in float64 with the reference
// kernels to 1e-10 (relative to the largest element), in float32 with the fast kernels to float
// tolerance.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "examples/models/mobilenet_v2.hpp"
#include "examples/models/resnet.hpp"
#include "examples/models/unet.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {

const std::string kDir = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/";

double max_abs(const Tensor& t) {
    double m = 0;
    for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
    return m;
}

// max |a - b| / max(max |b|, floor): the error relative to the tensor's scale, not per element
// (gradients have elements near zero). `floor`, 1e-3 of the model's largest gradient element,
// keeps a gradient that is zero in exact arithmetic (MobileNetV2's batch-norm bias before a 1x1
// convolution and another batch norm, which removes any per-channel constant) from dividing
// rounding noise by rounding noise; such a gradient is still checked to be that small.
double relative_error(const Tensor& a, const Tensor& b, double floor = 0) {
    REQUIRE(a.shape() == b.shape());
    const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
    double diff = 0, scale = floor;
    for (std::size_t i = 0; i < va.size(); ++i) {
        diff = std::max(diff, std::abs(va[i] - vb[i]));
        scale = std::max(scale, std::abs(vb[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

struct Tolerances {
    double logits, grads;
};

// Loads the reference, runs the model, returns the worst relative error seen (for the message).
void check_against_pytorch(const std::string& file, nn::Module& model, tg::DType dtype, bool reference_kernels, Tolerances tol,
                           const std::function<Tensor(const Tensor&)>& logits_of = [](const Tensor& t) { return t; }) {
    std::map<std::string, Tensor> ref;
    for (auto& [name, t] : nn::load(kDir + file)) ref[name] = t;
    model.to(dtype);
    nn::NamedTensors dict;
    for (const auto& [name, p] : model.named_parameters()) {
        INFO(file, ": parameter ", name);
        REQUIRE(ref.count("param." + name));
        dict.emplace_back(name, ref.at("param." + name));
    }
    for (const auto& entry : model.named_buffers()) dict.push_back(entry);  // fresh: zeros and ones, as PyTorch's
    model.load_state_dict(dict);
    model.train();

    const Tensor x = ref.at("input").to(dtype);
    std::vector<int64_t> labels;
    for (double v : ref.at("labels").to_vector<double>()) labels.push_back(static_cast<int64_t>(v));

    tg::ReferenceKernelsGuard guard(reference_kernels);
    const Tensor out = model.forward(x);
    const Tensor loss = tg::cross_entropy(logits_of(out), labels);
    loss.backward();

    const std::string where = file + " in " + tg::dtype_name(dtype) + (reference_kernels ? " (reference kernels)" : " (fast kernels)");
    INFO(where);
    const double logits_error = relative_error(out, ref.at("logits"));
    CHECK_MESSAGE(logits_error <= tol.logits, "logits differ by " << logits_error);
    CHECK(std::abs(loss.item() - ref.at("loss").item()) <= tol.logits * std::abs(ref.at("loss").item()));
    double largest = 0;  // the largest gradient element of the model
    for (const auto& [name, p] : model.named_parameters()) largest = std::max(largest, max_abs(ref.at("grad." + name)));
    double worst = 0;
    int checked = 0;
    for (const auto& [name, p] : model.named_parameters()) {
        INFO("gradient of ", name);
        REQUIRE(p.grad().defined());
        const double e = relative_error(p.grad(), ref.at("grad." + name), 1e-3 * largest);
        worst = std::max(worst, e);
        CHECK_MESSAGE(e <= tol.grads, "differs by " << e);
        ++checked;
    }
    for (const auto& [name, b] : model.named_buffers()) {
        INFO("buffer ", name);
        // One training forward: every batch norm has counted one batch, as PyTorch's.
        if (name.ends_with("num_batches_tracked")) CHECK(b.item<int64_t>() == 1);
        else CHECK(relative_error(b, ref.at("buffer." + name)) <= tol.logits);
    }
    MESSAGE(where << ": logits " << logits_error << ", worst of " << checked
                 << " parameter gradients " << worst);
}

// Segmentation logits [N,K,H,W] as rows [N*H*W, K], as the script's cross_entropy over pixels.
Tensor pixels_as_rows(const Tensor& out) { return out.permute({0, 2, 3, 1}).reshape({-1, out.size(1)}); }

constexpr Tolerances kFloat64{1e-10, 1e-10};
// PyTorch's own float32 run of these models is within 4e-5 of its float64 one (logits and
// gradients, same metric); ours measured 8e-5 at worst (ResNet-18). A wrong kernel or a flipped
// ReLU shows as 1e-2 or more.
constexpr Tolerances kFloat32{1e-4, 3e-4};

std::shared_ptr<tg::models::MobileNetV2> small_mobilenet(tg::Generator& gen) {
    return std::make_shared<tg::models::MobileNetV2>(
        10, gen, 0.25, std::vector<tg::models::InvertedResidualSetting>{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 2, 2}}, 8, 0.0);
}

}  // namespace

TEST_CASE("models: ResNet-18 matches PyTorch (float64 reference, float32 fast)") {
    tg::Generator gen(0);
    auto m64 = tg::models::resnet18(10, gen, 2);
    check_against_pytorch("resnet18_w2.tgck", *m64, tg::kFloat64, true, kFloat64);
    auto m32 = tg::models::resnet18(10, gen, 2);
    check_against_pytorch("resnet18_w2.tgck", *m32, tg::kFloat32, false, kFloat32);
}

TEST_CASE("models: MobileNetV2 matches PyTorch (float64 reference, float32 fast)") {
    tg::Generator gen(0);
    auto m64 = small_mobilenet(gen);
    check_against_pytorch("mobilenet_v2_small.tgck", *m64, tg::kFloat64, true, kFloat64);
    auto m32 = small_mobilenet(gen);
    check_against_pytorch("mobilenet_v2_small.tgck", *m32, tg::kFloat32, false, kFloat32);
}

TEST_CASE("models: U-Net matches PyTorch (float64 reference, float32 fast)") {
    tg::Generator gen(0);
    tg::models::UNet m64(3, 3, 4, gen);
    check_against_pytorch("unet_small.tgck", m64, tg::kFloat64, true, kFloat64, pixels_as_rows);
    tg::models::UNet m32(3, 3, 4, gen);
    check_against_pytorch("unet_small.tgck", m32, tg::kFloat32, false, kFloat32, pixels_as_rows);
}

TEST_CASE("models: parameter names are torchvision's") {
    tg::Generator gen(0);
    auto resnet = tg::models::resnet18(10, gen, 2);
    std::vector<std::string> names;
    for (const auto& [name, t] : resnet->state_dict()) names.push_back(name);
    for (const char* want : {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                             "layer2.0.downsample.1.bias", "layer4.1.bn2.weight", "fc.bias"})
        CHECK_MESSAGE(std::find(names.begin(), names.end(), want) != names.end(), want);
    auto mnet = small_mobilenet(gen);
    names.clear();
    for (const auto& [name, t] : mnet->state_dict()) names.push_back(name);
    for (const char* want : {"features.0.0.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
                             "features.2.conv.0.1.running_mean", "classifier.1.weight"})
        CHECK_MESSAGE(std::find(names.begin(), names.end(), want) != names.end(), want);
}

// One training step of ResNet-18 under the profiler: every op it runs is listed, forward and
// backward, as often as the model runs it, and nothing else is. The ops on the op entry
// (detail::run_op) open their own profiler scope, so their forward is timed; an op still
// recorded by hand without one is counted with no time.
TEST_CASE("models: the profiler lists every op of a ResNet-18 training step, forward and backward") {
    tg::Generator gen(3);
    auto model = tg::models::resnet18(10, gen, 2);
    const Tensor x = tg::randn({2, 3, 32, 32}, gen);
    tg::Profiler profiler;
    Tensor loss = tg::cross_entropy((*model)(x), {1, 7});
    loss.backward();
    profiler.stop();

    // conv2d and batch_norm: the stem, two per block, three downsamples; relu: the stem and two per
    // block; add: one per block (the residual); flatten: a reshape, then a view, which records the
    // node; linear reshapes its output (a view without a node); slice: a downsample's 1x1
    // convolution of stride 2 reads every second row and column, then runs with stride 1.
    struct Calls {
        int64_t forward, backward;
    };
    const std::map<std::string, Calls> calls{
        {"conv2d", {20, 20}}, {"batch_norm", {20, 20}}, {"relu", {17, 17}}, {"max_pool2d", {1, 1}}, {"add", {8, 8}},
        {"adaptive_avg_pool2d", {1, 1}}, {"flatten", {1, 0}}, {"reshape", {2, 0}}, {"view", {2, 1}}, {"slice", {6, 6}},
        {"linear", {1, 1}}, {"cross_entropy", {1, 1}}};
    std::map<std::string, tg::Profiler::Stats> rows;
    for (const tg::Profiler::Stats& r : profiler.by_op()) rows[r.name] = r;
    for (const auto& [name, row] : rows) CHECK_MESSAGE(calls.count(name) == 1, "the profile lists an op the step does not run: " << name);
    for (const auto& [name, n] : calls) {
        INFO(name);
        REQUIRE(rows.count(name) == 1);
        CHECK(rows[name].forward_calls == n.forward);
        CHECK(rows[name].backward_calls == n.backward);
    }
    for (const char* name : {"conv2d", "batch_norm", "relu", "add", "max_pool2d", "adaptive_avg_pool2d", "flatten", "view", "slice",
                             "linear", "cross_entropy"}) {
        INFO(name << " is on the op entry");
        CHECK(rows[name].forward_total_ms > 0);
        if (calls.at(name).backward > 0) CHECK(rows[name].backward_total_ms > 0);
    }
}
