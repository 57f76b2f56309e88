// libtorch.hpp's data API, torch::save/torch::load, a tensor's device members and the layers
// added for libtorch programs (Embedding, ModuleList, Softmax, LogSoftmax, Conv1d), written in torch::
// spellings as a ported program writes them. The loaders are checked against tg::nn::DataLoader
// (the same batches, bit for bit), the files by round trips and refusals, the layers against
// PyTorch 1.13 (tests/libtorch_layers_reference.py).
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "libtorch.hpp"
#include "tests/reference_values.hpp"
#include "tests/text_files.hpp"

namespace torch = tapegrad::libtorch;
namespace tg = tapegrad;
using tapegrad::testing::TempDir;

namespace {

// PyTorch 1.13's values for the layers (tests/libtorch_layers_reference.py).
const tapegrad::testing::ReferenceValues kReference("tests/libtorch_layers_reference.txt");

std::vector<double> values(const tg::Tensor& t) { return t.to_vector<double>(); }

// Bit for bit: the same dtype, shape and element values.
bool same(const tg::Tensor& a, const tg::Tensor& b) {
    return a.dtype() == b.dtype() && a.shape() == b.shape() && values(a) == values(b);
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

// `prefix`-images-idx3-ubyte and -labels-idx1-ubyte with n images of 28 x 28 whose pixels are
// (image * 37 + k) % 256 and labels (image * 3) % 10.
void write_mnist(const TempDir& dir, const std::string& prefix, uint32_t n) {
    std::vector<uint8_t> images, labels;
    put_be32(images, tg::nn::kIdxImagesMagic);
    put_be32(images, n);
    put_be32(images, 28);
    put_be32(images, 28);
    for (uint32_t i = 0; i < n; ++i)
        for (uint32_t k = 0; k < 784; ++k) images.push_back(static_cast<uint8_t>((i * 37 + k) % 256));
    put_be32(labels, tg::nn::kIdxLabelsMagic);
    put_be32(labels, n);
    for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>((i * 3) % 10));
    std::ofstream(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary)
        .write(reinterpret_cast<const char*>(images.data()), static_cast<std::streamsize>(images.size()));
    std::ofstream(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary)
        .write(reinterpret_cast<const char*>(labels.data()), static_cast<std::streamsize>(labels.size()));
}

// A directory of 10 training and 4 test images, named for the test case (ctest runs cases at once).
struct MnistDir {
    TempDir dir;
    explicit MnistDir(const std::string& name) : dir(name) {
        write_mnist(dir, "train", 10);
        write_mnist(dir, "t10k", 4);
    }
};

// Every batch of one epoch of tapegrad's loader.
std::vector<tg::nn::Batch> epoch_of(tg::nn::DataLoader& loader) {
    std::vector<tg::nn::Batch> out;
    for (const tg::nn::Batch& batch : loader) out.push_back(batch);
    return out;
}

// Every batch of one epoch of a torch::data loader, as (data, target).
template <class Loader>
std::vector<tg::nn::Batch> epoch_of_torch(Loader& loader) {
    std::vector<tg::nn::Batch> out;
    for (auto& batch : loader) out.push_back({batch.data, batch.target});
    return out;
}

void check_same_batches(const std::vector<tg::nn::Batch>& got, const std::vector<tg::nn::Batch>& expected) {
    REQUIRE(got.size() == expected.size());
    for (std::size_t b = 0; b < got.size(); ++b) {
        CAPTURE(b);
        CHECK(same(got[b].images, expected[b].images));
        CHECK(same(got[b].labels, expected[b].labels));
    }
}

// A dataset of one's own, as libtorch programs write them: item i is ([i, 2i] / 4, i % 3).
class Pairs : public torch::data::datasets::Dataset<Pairs> {
public:
    explicit Pairs(int64_t n) : n_(n) {}
    torch::data::Example<> get(size_t index) override {
        const auto i = static_cast<double>(index);
        return {torch::tensor({i / 4, 2 * i / 4}), torch::scalar_tensor(static_cast<double>(index % 3), torch::kLong)};
    }
    std::optional<size_t> size() const override { return static_cast<size_t>(n_); }

private:
    int64_t n_;
};

// Pairs' items as tensors, for tg::nn::TensorDataset.
tg::nn::TensorDataset pairs_as_tensors(int64_t n) {
    Pairs pairs(n);
    std::vector<tg::Tensor> data, targets;
    for (int64_t i = 0; i < n; ++i) {
        auto e = pairs.get(static_cast<size_t>(i));
        data.push_back(e.data);
        targets.push_back(e.target);
    }
    return tg::nn::TensorDataset(tg::stack(data), tg::stack(targets));
}

}  // namespace

TEST_CASE("torch::data: MNIST normalised and stacked, sequential, is tg::nn::DataLoader's batches bit for bit") {
    MnistDir mnist("libtorch_mnist_sequential");
    auto dataset = torch::data::datasets::MNIST(mnist.dir.path.string())
                       .map(torch::data::transforms::Normalize<>(0.1307, 0.3081))
                       .map(torch::data::transforms::Stack<>());
    CHECK(dataset.size().value() == 10);
    auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(std::move(dataset), 4);

    tg::nn::DataLoader reference(tg::nn::load_mnist(mnist.dir.path.string(), tg::nn::Split::Train),
                                 {.batch_size = 4, .shuffle = false, .mean = 0.1307, .std = 0.3081});
    const auto expected = epoch_of(reference);
    REQUIRE(expected.size() == 3);
    for (int epoch = 0; epoch < 2; ++epoch) check_same_batches(epoch_of_torch(*loader), expected);

    size_t seen = 0;
    for (auto& batch : *loader) {
        CHECK(batch.data.shape() == tg::Shape{batch.data.size(0), 1, 28, 28});
        CHECK(batch.target.dtype() == torch::kLong);
        seen += static_cast<size_t>(batch.data.size(0));
    }
    CHECK(seen == 10);
}

TEST_CASE("torch::data: the test split, DataLoaderOptions with workers, and the random sampler following manual_seed") {
    MnistDir mnist("libtorch_mnist_random");
    using torch::data::datasets::MNIST;
    auto test_set = MNIST(mnist.dir.path.string(), MNIST::Mode::kTest).map(torch::data::transforms::Stack<>());
    CHECK(test_set.size().value() == 4);
    CHECK_FALSE(test_set.dataset().is_train());

    // Workers make the same batches as the loop's thread; a random order drawn from the default
    // generator, so that the same seed gives the same order.
    auto train = [&] {
        return MNIST(mnist.dir.path.string()).map(torch::data::transforms::Normalize<>(0.5, 0.5)).map(torch::data::transforms::Stack<>());
    };
    torch::manual_seed(7);
    auto shuffled = torch::data::make_data_loader(train(), torch::data::DataLoaderOptions().batch_size(3).workers(2));
    torch::manual_seed(7);
    uint64_t seed = 0;
    {
        auto lock = tg::default_generator().lock();
        seed = tg::default_generator().next_u64();
    }
    tg::nn::DataLoader reference(tg::nn::load_mnist(mnist.dir.path.string(), tg::nn::Split::Train),
                                 {.batch_size = 3, .seed = seed, .mean = 0.5, .std = 0.5});
    for (int epoch = 0; epoch < 2; ++epoch) check_same_batches(epoch_of_torch(*shuffled), epoch_of(reference));

    torch::manual_seed(7);
    auto unshuffled = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
        train(), torch::data::DataLoaderOptions(3).workers(2).drop_last(true));
    const auto batches = epoch_of_torch(*unshuffled);
    CHECK(batches.size() == 3);  // 10 items, the last single one dropped
    const auto first_shuffled = epoch_of_torch(*shuffled);
    CHECK_FALSE(same(first_shuffled[0].labels, batches[0].labels));  // (0, 3, 6) in order; a shuffle moved them
}

TEST_CASE("torch::data: a dataset of one's own, stacked or as vectors of examples") {
    auto dataset = Pairs(7).map(torch::data::transforms::Stack<>());
    auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
        std::move(dataset), torch::data::DataLoaderOptions().batch_size(3).workers(2));
    tg::nn::DataLoader reference(std::make_shared<tg::nn::TensorDataset>(pairs_as_tensors(7)), {.batch_size = 3, .shuffle = false});
    check_same_batches(epoch_of_torch(*loader), epoch_of(reference));

    // Without a collation a batch is the examples themselves.
    auto examples = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(Pairs(5), 2);
    std::vector<int64_t> targets;
    for (std::vector<torch::data::Example<>>& batch : *examples) {
        CHECK(batch.size() <= 2);
        for (const auto& e : batch) {
            CHECK(e.data.shape() == tg::Shape{2});
            targets.push_back(e.target.item<int64_t>());
        }
    }
    CHECK(targets == std::vector<int64_t>{0, 1, 2, 0, 1});

    // Normalize: (x - mean) / stddev, per channel of [C, ...], mean and stddev [C,1,1].
    torch::data::transforms::Normalize<> per_channel({0.5, 1.0}, {2.0, 4.0});
    CHECK(values(per_channel(torch::tensor({1.5, 5.0}).view({2, 1, 1}))) == std::vector<double>{0.5, 1.0});
    auto normalized = Pairs(3).map(torch::data::transforms::Normalize<>(0.25, 0.5));
    CHECK(values(normalized.get(2).data) == std::vector<double>{0.5, 1.5});  // data [0.5, 1.0]
    CHECK_THROWS_AS(torch::data::transforms::Normalize<>({0.5, 1.0}, {2.0}), std::invalid_argument);

    auto lambda = Pairs(2).map(torch::data::transforms::TensorLambda<>([](torch::Tensor x) { return x * 2; }));
    CHECK(values(lambda.get(1).data) == std::vector<double>{0.5, 1.0});
}

TEST_CASE("torch::save and torch::load: a module, an optimizer, a tensor and a list round-trip") {
    TempDir dir("libtorch_save");
    torch::manual_seed(1);
    torch::nn::Linear saved(4, 3);
    torch::nn::Linear loaded(4, 3);
    REQUIRE_FALSE(same(saved->weight, loaded->weight));
    torch::save(saved, dir / "model.pt");
    torch::load(loaded, dir / "model.pt");
    CHECK(same(saved->weight, loaded->weight));
    CHECK(same(saved->bias, loaded->bias));

    torch::optim::Adam optimizer(saved->parameters(), torch::optim::AdamOptions(0.01));
    saved(torch::ones({2, 4})).sum().backward();
    optimizer.step();
    torch::save(optimizer, dir / "optimizer.pt");
    torch::optim::Adam restored(loaded->parameters(), torch::optim::AdamOptions(0.5));
    torch::load(restored, dir / "optimizer.pt");
    const auto a = optimizer.state_dict(), b = restored.state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(a[i].first);
        CHECK(a[i].first == b[i].first);
        CHECK(same(a[i].second, b[i].second));
    }

    const torch::Tensor samples = torch::randn({2, 3});
    torch::save(samples, torch::str(dir / "sample-", 1, ".pt"));
    torch::Tensor back;
    torch::load(back, dir / "sample-1.pt");
    CHECK(same(back, samples));

    const std::vector<torch::Tensor> list{torch::ones({2}), torch::arange(3, torch::kLong)};
    torch::save(list, dir / "list.pt");
    std::vector<torch::Tensor> list_back;
    torch::load(list_back, dir / "list.pt");
    REQUIRE(list_back.size() == 2);
    CHECK(same(list_back[0], list[0]));
    CHECK(same(list_back[1], list[1]));
}

TEST_CASE("torch::load refuses a file of another kind, shape or content, and changes nothing") {
    TempDir dir("libtorch_load_refuses");
    torch::manual_seed(2);
    torch::nn::Linear model(4, 3);
    const std::vector<double> before = values(model->weight);
    torch::save(torch::ones({3}), dir / "tensor.pt");
    CHECK_THROWS_WITH_AS(torch::load(model, dir / "tensor.pt"), doctest::Contains("holds a tensor, not a module"), std::runtime_error);

    torch::nn::Linear other(4, 2);
    torch::save(other, dir / "other.pt");
    CHECK_THROWS_WITH_AS(torch::load(model, dir / "other.pt"), doctest::Contains("other.pt"), std::invalid_argument);

    tg::nn::save({{"weight", torch::ones({3, 4})}}, dir / "plain.tgck");
    CHECK_THROWS_WITH_AS(torch::load(model, dir / "plain.tgck"), doctest::Contains("was not written by torch::save"),
                         std::runtime_error);

    torch::save(model, dir / "model.pt");
    {
        std::fstream file(dir / "model.pt", std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(-3, std::ios::end);
        file.put('\x7f');
    }
    CHECK_THROWS_WITH_AS(torch::load(model, dir / "model.pt"), doctest::Contains("checksum"), std::runtime_error);
    CHECK(values(model->weight) == before);

    torch::Tensor untouched = torch::zeros({2});
    CHECK_THROWS_AS(torch::load(untouched, dir / "other.pt"), std::runtime_error);
    CHECK(values(untouched) == std::vector<double>{0, 0});
}

TEST_CASE("a tensor's device members: the CPU is where every tensor is, CUDA is refused") {
    torch::Device device(torch::kCPU);
    if (torch::cuda::is_available()) device = torch::Device(torch::kCUDA);
    const torch::Tensor x = torch::ones({2, 2});
    const torch::Tensor moved = x.to(device);
    CHECK(moved.data<float>() == x.data<float>());  // no copy, as libtorch's to() on the same device
    CHECK(x.to(torch::kCPU).data<float>() == x.data<float>());
    CHECK(x.cpu().data<float>() == x.data<float>());
    CHECK(x.to(device, torch::kDouble).dtype() == torch::kDouble);
    CHECK(x.device() == torch::Device(torch::kCPU));
    CHECK(torch::str(x.device()) == "cpu");
    CHECK(x.device().is_cpu());
    CHECK(x.is_cpu());
    CHECK_FALSE(x.is_cuda());
    CHECK_THROWS_WITH_AS(x.to(torch::Device(torch::kCUDA)), doctest::Contains("tapegrad runs on the CPU"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(x.to(torch::kCUDA), doctest::Contains("Tensor::to"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(x.cuda(), doctest::Contains("tapegrad runs on the CPU"), std::invalid_argument);
}

TEST_CASE("torch::nn::Embedding with padding_idx matches PyTorch, and its gradient is differentiable again") {
    torch::nn::Embedding embedding(torch::nn::EmbeddingOptions(5, 3).padding_idx(2));
    CHECK(values(embedding->weight.select(0, 2)) == std::vector<double>{0, 0, 0});  // the padding row starts at zero
    embedding->to(torch::kDouble);
    {
        torch::NoGradGuard no_grad;
        embedding->weight.copy_(torch::arange(15, torch::kDouble).view({5, 3}) * 0.1 - 0.7);
    }
    const torch::Tensor indices = torch::tensor({{0, 2, 4}, {2, 2, 1}}, torch::kLong);
    const torch::Tensor out = embedding(indices);
    CHECK(out.shape() == tg::Shape{2, 3, 3});
    const torch::Tensor c = torch::arange(18, torch::kDouble).view({2, 3, 3}) * 0.05 + 0.1;
    (out * c).sum().backward();
    kReference.check(out, "embedding.out", 1e-12);
    kReference.check(embedding->weight.grad(), "embedding.grad_weight", 1e-12);

    // Without padding (whose rows have no gradient by design), repeated indices accumulate.
    torch::nn::Embedding plain(5, 3);
    const auto lookup = [&](const std::vector<torch::Tensor>& in) {
        plain->weight = in[0];
        const torch::Tensor rows = plain->forward(indices);
        return rows * rows;
    };
    const torch::Tensor w = (torch::arange(15, torch::kDouble).view({5, 3}) * 0.1 - 0.7).requires_grad_();
    CHECK(tg::gradcheck(lookup, {w}));
    CHECK(tg::gradgradcheck(lookup, {w}));

    CHECK_THROWS_WITH_AS(embedding(torch::ones({2})), doctest::Contains("int64 or int32"), std::invalid_argument);
    CHECK_THROWS_AS(torch::nn::Embedding(torch::nn::EmbeddingOptions(5, 3).padding_idx(5)), std::invalid_argument);
    CHECK(torch::nn::Embedding(torch::nn::EmbeddingOptions(5, 3).padding_idx(-1))->padding_idx == 4);
}

TEST_CASE("torch::nn::ModuleList registers its modules, indexes and iterates them") {
    struct NetImpl : torch::nn::Module {
        NetImpl() {
            layers = register_module("layers", torch::nn::ModuleList(torch::nn::Linear(4, 8), torch::nn::ReLU()));
            layers->push_back(torch::nn::Linear(8, 2));
        }
        torch::Tensor forward(const torch::Tensor& x) override {
            torch::Tensor h = x;
            for (const auto& layer : *layers) h = (*layer)(h);
            return h;
        }
        torch::nn::ModuleList layers{nullptr};
    };
    torch::manual_seed(3);
    auto net = std::make_shared<NetImpl>();
    CHECK(net->layers->size() == 3);
    CHECK(net->parameters().size() == 4);
    CHECK(net->named_parameters()[2].first == "layers.2.weight");
    auto& first = net->layers->at<torch::nn::LinearImpl>(0);
    CHECK(first.weight.shape() == tg::Shape{8, 4});
    CHECK(net->layers[1].get() == net->layers->ptr(1).get());
    CHECK_THROWS_AS(net->layers->at<torch::nn::LinearImpl>(1), std::invalid_argument);
    CHECK(net->layers[0]->as<torch::nn::Linear>() == &first);  // a holder type names its module
    CHECK(net->layers[2]->as<torch::nn::LinearImpl>() != nullptr);
    CHECK(net->layers[1]->as<torch::nn::Linear>() == nullptr);
    const torch::nn::Module& relu = *net->layers[1];
    CHECK(relu.as<torch::nn::ReLU>() != nullptr);
    CHECK_THROWS_AS(net->layers->ptr(3), std::out_of_range);
    CHECK_THROWS_AS((*net->layers)(torch::ones({1, 4})), std::logic_error);

    const torch::Tensor x = torch::ones({1, 4});
    const torch::Tensor expected = net->layers->at<torch::nn::LinearImpl>(2)(torch::relu(first.forward(x)));
    CHECK(values((*net)(x)) == values(expected));
}

TEST_CASE("torch::nn::Softmax and LogSoftmax match PyTorch") {
    const torch::Tensor x = torch::arange(8, torch::kDouble).view({2, 4}) * 0.3 - 1;
    torch::nn::Softmax softmax(1);
    torch::nn::LogSoftmax log_softmax(torch::nn::LogSoftmaxOptions(0));
    kReference.check(softmax(x), "softmax.dim1", 1e-12);
    kReference.check(log_softmax(x), "log_softmax.dim0", 1e-12);
    std::ostringstream printed;
    printed << softmax;
    CHECK(printed.str() == "tg::nn::Softmax(dim=1)");
}

TEST_CASE("torch::nn::Conv1d matches PyTorch, batched and unbatched, and checks its input") {
    torch::nn::Conv1d conv(torch::nn::Conv1dOptions(4, 6, 3).stride(2).padding(1).groups(2));
    CHECK(conv->weight.shape() == tg::Shape{6, 2, 3});
    conv->to(torch::kDouble);
    {
        torch::NoGradGuard no_grad;
        conv->weight.copy_((torch::arange(36, torch::kDouble) * 0.02 - 0.3).view({6, 2, 3}));
        conv->bias.copy_(torch::arange(6, torch::kDouble) * 0.1 - 0.2);
    }
    const torch::Tensor x = kReference.tensor("conv1d.input").requires_grad_();
    const torch::Tensor y = conv(x);
    (y * kReference.tensor("conv1d.c")).sum().backward();
    kReference.check(y, "conv1d.out", 1e-10);
    kReference.check(conv->weight.grad(), "conv1d.grad_weight", 1e-10);
    kReference.check(conv->bias.grad(), "conv1d.grad_bias", 1e-10);
    kReference.check(x.grad(), "conv1d.grad_input", 1e-10);
    CHECK(values(conv(x.detach().select(0, 1))) == values(y.detach().select(0, 1)));

    std::ostringstream printed;
    printed << conv;
    CHECK(printed.str() == "tg::nn::Conv1d(4, 6, kernel_size=[3], stride=[2], padding=[1], groups=2)");
    CHECK_THROWS_WITH_AS(conv(torch::ones({2, 3, 7}, torch::kDouble)), doctest::Contains("Conv1d: expected an input [N, 4, L]"),
                         std::invalid_argument);
    CHECK_THROWS_AS(torch::nn::Conv1d(4, 6, 0), std::invalid_argument);
}
