// Weights to and from PyTorch through safetensors. tests/safetensors/make_reference.py wrote the
// reference files with PyTorch 1.13 and torchvision (their state dicts and logits); this file
// loads them into the ports in examples/models, strictly and by name, and checks that what
// tapegrad writes has PyTorch's names, dtypes and shapes and reads back exactly. The other
// direction, PyTorch reading tapegrad's files, is the ctest safetensors_pytorch_reads_tapegrad
// (tests/safetensors/check_tapegrad_files.py), which runs the case "writes ... for PyTorch" below.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

#include "examples/models/mobilenet_v2.hpp"
#include "examples/models/resnet.hpp"
#include "nn/data.hpp"
#include "nn/safetensors.hpp"
#include "nn/serialize.hpp"
#include "tapegrad.hpp"
#include "tests/error_text.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tapegrad::testing::contains;
using tapegrad::testing::error_of;
using tapegrad::testing::slurp;
using tapegrad::testing::TempDir;
using tg::Tensor;

namespace {

const std::string kDir = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/safetensors/";

// A reference file, gunzipped into `dir` so that it is read through load_safetensors' own path.
std::string inflated(const TempDir& dir, const std::string& name) {
    const std::string gz = slurp(kDir + name + ".gz");
    REQUIRE(!gz.empty());
    const std::vector<uint8_t> bytes = nn::maybe_gunzip(reinterpret_cast<const uint8_t*>(gz.data()), gz.size(), name);
    const std::string path = dir / name;
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
}

std::map<std::string, Tensor> as_map(const nn::NamedTensors& tensors) { return {tensors.begin(), tensors.end()}; }

bool same_bytes(const Tensor& a, const Tensor& b) {
    if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
    if (a.numel() == 0) return true;  // an empty tensor has no data pointer to compare
    const Tensor da = a.contiguous(), db = b.contiguous();
    return std::memcmp(da.data_ptr(), db.data_ptr(), static_cast<std::size_t>(da.numel()) * tg::element_size(da.dtype())) == 0;
}

// The largest difference relative to the largest reference value.
double relative_error(const Tensor& got, const Tensor& want) {
    REQUIRE(got.shape() == want.shape());
    const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        diff = std::max(diff, std::abs(g[i] - w[i]));
        scale = std::max(scale, std::abs(w[i]));
    }
    return diff / scale;
}

std::shared_ptr<nn::Module> make_model(const std::string& name, tg::Generator& gen) {
    if (name == "resnet18") return tg::models::resnet18(10, gen);
    return std::make_shared<tg::models::MobileNetV2>(10, gen);
}

}  // namespace

TEST_CASE("safetensors: torchvision's ResNet-18 and MobileNetV2 load strictly and give PyTorch's logits") {
    TempDir dir("safetensors_torchvision");
    const auto io = as_map(nn::load_safetensors(inflated(dir, "reference_io.safetensors")));
    for (const std::string name : {"resnet18", "mobilenet_v2"}) {
        CAPTURE(name);
        const std::string path = inflated(dir, name + ".safetensors");
        const nn::Safetensors file = nn::read_safetensors(path);
        CHECK(file.metadata.at("format") == "pt");
        tg::Generator gen(3);
        auto model = make_model(name, gen);
        // Every name, every buffer (num_batches_tracked included), nothing left over.
        const nn::LoadResult result = model->load_state_dict(file.tensors, /*strict=*/true);
        CHECK(result.missing_keys.empty());
        CHECK(result.unexpected_keys.empty());
        const std::string bn = name == "resnet18" ? "bn1" : "features.0.1";
        const Tensor tracked = as_map(model->state_dict()).at(bn + ".num_batches_tracked");
        CHECK(tracked.dtype() == tg::kInt64);
        CHECK(tracked.item<int64_t>() == 3);  // three training batches in PyTorch
        model->eval();
        const double error = relative_error(model->forward(io.at("input")), io.at(name + ".logits"));
        MESSAGE(name << ": logits within " << error << " of PyTorch's");
        // PyTorch's own float32 run is within 6e-7 of its float64 one; a misplaced weight or a
        // wrong running statistic changes the logits by 1e-2 or more.
        CHECK(error < 1e-4);
    }
}

TEST_CASE("safetensors: tapegrad writes torchvision's names, dtypes and shapes, in state_dict order") {
    TempDir dir("safetensors_names");
    for (const std::string name : {"resnet18", "mobilenet_v2"}) {
        CAPTURE(name);
        tg::Generator gen(4);
        auto model = make_model(name, gen);
        const std::string path = dir / (name + ".safetensors");
        nn::save_safetensors(path, model->state_dict());
        const nn::NamedTensors written = nn::load_safetensors(path);
        const auto pytorch = as_map(nn::load_safetensors(inflated(dir, name + ".safetensors")));
        CHECK(written.size() == pytorch.size());
        const nn::NamedTensors state = model->state_dict();
        REQUIRE(written.size() == state.size());
        for (std::size_t i = 0; i < written.size(); ++i) {
            const auto& [key, t] = written[i];
            CAPTURE(key);
            CHECK(key == state[i].first);
            CHECK(same_bytes(t, state[i].second));
            REQUIRE(pytorch.count(key));
            CHECK(t.dtype() == pytorch.at(key).dtype());
            CHECK(t.shape() == pytorch.at(key).shape());
        }
    }
}

TEST_CASE("safetensors: F16 and BF16 load widened to float32 exactly as PyTorch's .float()") {
    TempDir dir("safetensors_half");
    const auto io = as_map(nn::load_safetensors(inflated(dir, "reference_io.safetensors")));
    for (const std::string key : {"half", "bfloat16"}) {
        CAPTURE(key);
        CHECK(io.at(key + ".stored").dtype() == tg::kFloat32);
        CHECK(same_bytes(io.at(key + ".stored"), io.at(key + ".as_float")));
    }
}

TEST_CASE("safetensors: what tapegrad writes reads back exactly, with its metadata, in every form") {
    TempDir dir("safetensors_round_trip");
    tg::Generator gen(5);
    const Tensor matrix = tg::randn({3, 5}, gen);
    const nn::NamedTensors tensors = {
        {"weight", matrix.transpose(0, 1)},  // strided: stored dense, row-major
        {"double", tg::randn({2, 2, 2}, gen, {.dtype = tg::kFloat64})},
        {"steps", tg::scalar_tensor(7, {.dtype = tg::kInt64})},
        {"labels", tg::from_vector(std::vector<int64_t>{-3, 0, int64_t{1} << 40}, {3})},
        {"counts", tg::arange(6, {.dtype = tg::kInt32}).view({2, 3})},
        {"empty", tg::zeros({0, 4})},
        {"ünïcode name", tg::ones({1})},
    };
    const std::string path = dir / "all.safetensors";
    nn::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "a \"quoted\" value\n"}});
    const nn::Safetensors file = nn::read_safetensors(path);
    CHECK(file.metadata == nn::SafetensorsMetadata{{"format", "pt"}, {"note", "a \"quoted\" value\n"}});
    REQUIRE(file.tensors.size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        CAPTURE(tensors[i].first);
        CHECK(file.tensors[i].first == tensors[i].first);
        CHECK(same_bytes(file.tensors[i].second, tensors[i].second));
    }
    // The header is padded to a multiple of 8, so that the data starts aligned.
    const std::string bytes = slurp(path);
    uint64_t header_size;
    std::memcpy(&header_size, bytes.data(), 8);
    CHECK(header_size % 8 == 0);
    // The map form (name order), the single-tensor form, and the in-memory pair.
    nn::save_safetensors(path, std::map<std::string, Tensor>{{"b", tg::ones({2})}, {"a", tg::zeros({3})}});
    const nn::NamedTensors from_map = nn::load_safetensors(path);
    REQUIRE(from_map.size() == 2);
    CHECK(from_map[0].first == "a");
    nn::save_safetensors(path, "only", matrix);
    CHECK(same_bytes(nn::load_safetensors_tensor(path, "only"), matrix));
    const std::string missing = error_of([&] { nn::load_safetensors_tensor(path, "other"); });
    CHECK(missing == "load_safetensors_tensor: " + path + " has no tensor 'other'; it holds 'only'");
    const std::vector<uint8_t> blob = nn::serialize_safetensors(tensors);
    CHECK(nn::parse_safetensors(blob.data(), blob.size()).tensors.size() == tensors.size());
}

TEST_CASE("safetensors: a strict load names every missing, unexpected and mis-shaped entry and changes nothing") {
    tg::Generator gen(6);
    auto model = tg::models::resnet18(10, gen, 2);
    nn::NamedTensors dict = model->state_dict();
    std::map<std::string, Tensor> before;
    for (const auto& [n, t] : dict) before[n] = t.clone();
    nn::NamedTensors edited;
    for (const auto& [n, t] : dict) {
        if (n == "layer1.0.conv1.weight") continue;                               // missing
        if (n == "fc.weight") edited.emplace_back(n, tg::zeros({1000, 16}));      // mis-shaped
        else if (n == "bn1.running_mean") edited.emplace_back(n, tg::zeros({3})); // mis-shaped
        else edited.emplace_back(n, tg::full(t.shape(), 2.0, {.dtype = t.dtype()}));
    }
    edited.emplace_back("fc.extra", tg::ones({1}));  // unexpected
    const std::string error = error_of([&] { model->load_state_dict(edited, true); });
    INFO(error);
    CHECK(contains(error, "missing: layer1.0.conv1.weight; unexpected: fc.extra"));
    CHECK(contains(error, "size mismatch for 'fc.weight': the checkpoint has [1000,16], the model has [10,16]"));
    CHECK(contains(error, "size mismatch for 'bn1.running_mean': the checkpoint has [3], the model has [2]"));
    for (const auto& [n, t] : model->state_dict()) {
        CAPTURE(n);
        CHECK(same_bytes(t, before.at(n)));
    }
    // Non-strict: the key differences come back, the size mismatches are still refused (PyTorch's rule).
    CHECK(contains(error_of([&] { model->load_state_dict(edited, false); }), "size mismatch for 'fc.weight'"));
}

TEST_CASE("safetensors: a state dict saved before num_batches_tracked existed loads strictly and counts from 0") {
    TempDir dir("safetensors_legacy");
    tg::Generator gen(7);
    auto model = tg::models::resnet18(10, gen, 2);
    model->forward(tg::randn({2, 3, 32, 32}, gen));  // training mode: every count is now 1
    nn::NamedTensors legacy;
    for (const auto& [n, t] : model->state_dict())
        if (!n.ends_with("num_batches_tracked")) legacy.emplace_back(n, t.clone());
    auto fresh = tg::models::resnet18(10, gen, 2);
    fresh->forward(tg::randn({2, 3, 32, 32}, gen));
    const nn::LoadResult result = fresh->load_state_dict(legacy, true);
    CHECK(result.missing_keys.empty());
    for (const auto& [n, t] : fresh->state_dict()) {
        CAPTURE(n);
        if (n.ends_with("num_batches_tracked")) CHECK(t.item<int64_t>() == 0);
    }
    // A training checkpoint of that time (model entries without the counts) loads too.
    nn::NamedTensors checkpoint;
    for (const auto& [n, t] : legacy) checkpoint.emplace_back("model." + n, t);
    checkpoint.emplace_back("meta.epoch", tg::scalar_tensor(2, {.dtype = tg::kFloat64}));
    nn::save(checkpoint, dir / "old.tgck");
    CHECK(nn::load_checkpoint(dir / "old.tgck", *fresh, nullptr).epoch == 2);
}

// Run by the ctest safetensors_pytorch_reads_tapegrad with TAPEGRAD_SAFETENSORS_OUT set: writes
// both models' state dicts, a fixed input and tapegrad's eval-mode logits on it, for
// tests/safetensors/check_tapegrad_files.py to load into torchvision. Without the variable it
// writes to a directory of its own and checks that the files read back.
TEST_CASE("safetensors: writes tapegrad's ResNet-18 and MobileNetV2 for PyTorch") {
    TempDir scratch("safetensors_for_pytorch");
    const char* out = std::getenv("TAPEGRAD_SAFETENSORS_OUT");
    const std::string dir = out ? std::string(out) : scratch.path.string();
    tg::Generator gen(8);
    const Tensor input = tg::randn({2, 3, 64, 64}, gen);
    nn::NamedTensors io{{"input", input}};
    for (const std::string name : {"resnet18", "mobilenet_v2"}) {
        auto model = make_model(name, gen);
        model->forward(tg::randn({4, 3, 64, 64}, gen));  // training mode: running statistics and counts move
        model->eval();
        io.emplace_back(name + ".logits", model->forward(input));
        nn::save_safetensors(dir + "/" + name + ".safetensors", model->state_dict(), {{"format", "pt"}});
        CHECK(nn::load_safetensors(dir + "/" + name + ".safetensors").size() == model->state_dict().size());
    }
    nn::save_safetensors(dir + "/io.safetensors", io);
}
