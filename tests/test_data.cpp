// IDX reading (plain and gzip, good and malformed files written here) and the DataLoader.
#include <doctest/doctest.h>

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "nn/data.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace fs = std::filesystem;
using tapegrad::testing::TempDir;

namespace {
void put_be32(std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

// n images of rows x cols whose pixels are (image * 10 + k) % 256, and labels image % 10.
std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
    std::vector<uint8_t> out;
    put_be32(out, nn::kIdxImagesMagic);
    put_be32(out, n);
    put_be32(out, rows);
    put_be32(out, cols);
    for (uint32_t i = 0; i < n; ++i)
        for (uint32_t k = 0; k < rows * cols; ++k) out.push_back(static_cast<uint8_t>((i * 10 + k) % 256));
    return out;
}

std::vector<uint8_t> idx_labels(uint32_t n) {
    std::vector<uint8_t> out;
    put_be32(out, nn::kIdxLabelsMagic);
    put_be32(out, n);
    for (uint32_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(i % 10));
    return out;
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& raw) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::vector<uint8_t> out(deflateBound(&zs, raw.size()) + 32);
    zs.next_in = const_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

void write(const fs::path& p, const std::vector<uint8_t>& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::string parse_error(const std::vector<uint8_t>& bytes, uint32_t magic = nn::kIdxImagesMagic) {
    try {
        nn::parse_idx(bytes.data(), bytes.size(), magic, "mem.idx");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

nn::ImageDataset tiny(int64_t n) {
    nn::ImageDataset d;
    d.count = n;
    d.rows = 2;
    d.cols = 2;
    for (int64_t i = 0; i < n; ++i) {
        for (int k = 0; k < 4; ++k) d.pixels.push_back(static_cast<uint8_t>(i));
        d.labels.push_back(i);
    }
    return d;
}

std::vector<int64_t> epoch_labels(nn::DataLoader& loader) {
    std::vector<int64_t> out;
    for (const nn::Batch& b : loader) {
        const std::vector<int64_t> labels = b.labels.to_vector<int64_t>();
        out.insert(out.end(), labels.begin(), labels.end());
    }
    return out;
}
}  // namespace

TEST_CASE("a well-formed IDX buffer parses") {
    const auto bytes = idx_images(3, 4, 5);
    const nn::IdxArray a = nn::parse_idx(bytes.data(), bytes.size(), nn::kIdxImagesMagic);
    CHECK(a.dims == std::vector<int64_t>{3, 4, 5});
    REQUIRE(a.data.size() == 60);
    CHECK(a.data[21] == 11);  // image 1, pixel 1
    const auto labels = idx_labels(12);
    CHECK(nn::parse_idx(labels.data(), labels.size(), nn::kIdxLabelsMagic).data[11] == 1);
}

TEST_CASE("malformed IDX buffers give errors naming the source and the problem") {
    auto bytes = idx_images(2, 3, 3);
    CHECK(parse_error(bytes, nn::kIdxLabelsMagic).find("mem.idx: bad magic number 0x00000803, expected 0x00000801") == 0);
    auto foreign = bytes;
    foreign[0] = 'P';
    CHECK(parse_error(foreign).find("not an IDX file") != std::string::npos);
    CHECK(parse_error({0, 0}).find("too short") != std::string::npos);
    CHECK(parse_error({0, 0, 8, 3, 0, 0}).find("truncated header") != std::string::npos);
    auto truncated = bytes;
    truncated.pop_back();
    CHECK(parse_error(truncated).find("(truncated)") != std::string::npos);
    auto trailing = bytes;
    trailing.push_back(0);
    CHECK(parse_error(trailing).find("trailing bytes") != std::string::npos);
    auto zero = bytes;
    zero[7] = 0;  // count 0
    CHECK(parse_error(zero).find("dimension 0 is 0") != std::string::npos);
    auto huge = bytes;
    huge[8] = 0x7f;  // rows = 0x7f000003
    CHECK(parse_error(huge).find("dimension 1") != std::string::npos);
    // Every truncation is a clean error.
    for (std::size_t n = 0; n < bytes.size(); ++n)
        CHECK(parse_error(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n)).rfind("mem.idx: ", 0) == 0);
}

TEST_CASE("gzip is detected by its magic bytes; garbage and truncated streams are errors") {
    const auto raw = idx_images(2, 3, 3);
    const auto gz = gzip(raw);
    CHECK(nn::maybe_gunzip(gz.data(), gz.size()) == raw);
    CHECK(nn::maybe_gunzip(raw.data(), raw.size()) == raw);
    CHECK(nn::decode_idx(gz.data(), gz.size(), nn::kIdxImagesMagic).dims == std::vector<int64_t>{2, 3, 3});
    auto garbage = gz;
    for (std::size_t i = 10; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 37);
    CHECK_THROWS_WITH_AS(nn::maybe_gunzip(garbage.data(), garbage.size(), "g.gz"), doctest::Contains("g.gz: "),
                         std::runtime_error);
    for (std::size_t n = 2; n < gz.size() - 8; ++n)
        CHECK_THROWS_AS(nn::maybe_gunzip(gz.data(), n, "cut.gz"), std::runtime_error);
}

TEST_CASE("load_mnist reads a directory of plain and gzipped files and checks it") {
    TempDir dir("mnist_dir");
    write(dir.path / "train-images-idx3-ubyte.gz", gzip(idx_images(5, 28, 28)));
    write(dir.path / "train-labels-idx1-ubyte", idx_labels(5));
    const nn::ImageDataset d = nn::load_mnist(dir.path.string(), nn::Split::Train);
    CHECK(d.count == 5);
    CHECK(d.rows == 28);
    CHECK(d.pixels.size() == 5 * 784);
    CHECK(d.labels == std::vector<int64_t>{0, 1, 2, 3, 4});
    CHECK(d.head(2).count == 2);
    CHECK(d.head(2).pixels.size() == 2 * 784);
    // No test split here.
    CHECK_THROWS_WITH_AS(nn::load_mnist(dir.path.string(), nn::Split::Test), doctest::Contains("t10k-images-idx3-ubyte"),
                         std::runtime_error);
    // Images and labels that disagree in count.
    write(dir.path / "train-labels-idx1-ubyte", idx_labels(4));
    CHECK_THROWS_WITH_AS(nn::load_mnist(dir.path.string(), nn::Split::Train), doctest::Contains("has 4 labels"),
                         std::runtime_error);
    // Images and labels swapped: the magic says so, naming the file.
    write(dir.path / "train-labels-idx1-ubyte", idx_images(5, 28, 28));
    CHECK_THROWS_WITH_AS(nn::load_mnist(dir.path.string(), nn::Split::Train),
                         doctest::Contains("train-labels-idx1-ubyte: bad magic"), std::runtime_error);
    CHECK_THROWS_WITH_AS(nn::load_mnist((dir.path / "nowhere").string(), nn::Split::Train),
                         doctest::Contains("does not exist"), std::runtime_error);
}

TEST_CASE("the installed Fashion-MNIST loads") {
    if (!fs::exists(nn::kFashionMnistDir)) {
        MESSAGE("skipped: ", nn::kFashionMnistDir, " is not installed");
        return;
    }
    const nn::ImageDataset test = nn::load_fashion_mnist(nn::kFashionMnistDir, nn::Split::Test);
    CHECK(test.count == 10000);
    CHECK(test.rows == 28);
    CHECK(test.cols == 28);
    CHECK(*std::max_element(test.labels.begin(), test.labels.end()) == 9);
}

TEST_CASE("DataLoader: batches, normalisation, drop_last") {
    nn::DataLoader loader(tiny(10), {.batch_size = 4, .shuffle = false, .mean = 0.0, .std = 1.0 / 255.0});
    CHECK(loader.num_batches() == 3);
    std::vector<int64_t> sizes;
    for (const nn::Batch& b : loader) {
        sizes.push_back(b.labels.numel());
        CHECK(b.labels.dtype() == tg::kInt64);
        CHECK(b.labels.shape() == tg::Shape{b.labels.numel()});
        CHECK(b.images.shape() == tg::Shape{b.labels.numel(), 1, 2, 2});
        // (p / 255 - 0) / (1/255) gives the raw pixel, which equals the label here.
        CHECK(b.images.at({0, 0, 1, 1}) == doctest::Approx(b.labels.at({0})));
    }
    CHECK(sizes == std::vector<int64_t>{4, 4, 2});
    nn::DataLoader dropping(tiny(10), {.batch_size = 4, .drop_last = true});
    CHECK(dropping.num_batches() == 2);
    CHECK(epoch_labels(dropping).size() == 8);
    // Without statistics the pixels are only scaled to [0, 1] (the loader never normalises a set
    // with its own statistics: a test set needs the training set's).
    nn::DataLoader plain(tiny(10), {.batch_size = 10, .shuffle = false});
    const tg::Tensor images = (*plain.begin()).images;
    for (int64_t i = 0; i < 10; ++i) CHECK(images.at({i, 0, 1, 0}) == doctest::Approx(i / 255.0));
    CHECK_THROWS_AS(nn::DataLoader(tiny(3), {.batch_size = 0}), std::invalid_argument);
    CHECK_THROWS_AS(nn::DataLoader(tiny(3), {.mean = 0.5}), std::invalid_argument);
}

TEST_CASE("DataLoader: shuffling is a permutation, new each epoch, and the same for the same seed") {
    nn::DataLoader a(tiny(50), {.batch_size = 8, .seed = 7});
    nn::DataLoader b(tiny(50), {.batch_size = 8, .seed = 7});
    nn::DataLoader c(tiny(50), {.batch_size = 8, .seed = 8});
    const auto a1 = epoch_labels(a), a2 = epoch_labels(a);
    CHECK(std::set<int64_t>(a1.begin(), a1.end()).size() == 50);
    CHECK(a1.size() == 50);
    CHECK(a1 != a2);
    CHECK(epoch_labels(b) == a1);
    CHECK(epoch_labels(b) == a2);
    CHECK(epoch_labels(c) != a1);
    std::vector<int64_t> identity(50);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(a1 != identity);
}

// ---------------------------------------------------------------- generic datasets

namespace {
// n images [3,4,4] whose element (i, c, r, k) is i * 100 + c * 20 + r * 4 + k: every value names
// its item, channel and position.
tg::Tensor coded_images(int64_t n) {
    std::vector<float> v;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < 3; ++c)
            for (int64_t p = 0; p < 16; ++p) v.push_back(static_cast<float>(i * 100 + c * 20 + p));
    return tg::from_vector(v, {n, 3, 4, 4});
}

float coded(int64_t item, int64_t c, int64_t r, int64_t k) { return static_cast<float>(item * 100 + c * 20 + r * 4 + k); }

// A dataset whose item 1 is smaller than the others.
struct Ragged : nn::Dataset {
    int64_t size() const override { return 3; }
    nn::Example get(int64_t index) const override {
        return {tg::zeros({2, index == 1 ? 3 : 4}), tg::from_vector(std::vector<int64_t>{index}, {})};
    }
};
}  // namespace

TEST_CASE("TensorDataset: 3-channel images with int64 labels, stacked into batches") {
    const tg::Tensor labels = tg::from_vector(std::vector<int64_t>{7, 8, 9, 10, 11}, {5});
    // The images in channels-last memory: items are views, the batches come out with the same values.
    auto data = std::make_shared<nn::TensorDataset>(coded_images(5).contiguous(tg::MemoryFormat::ChannelsLast), labels);
    CHECK(data->size() == 5);
    const nn::Example e = data->get(3);
    CHECK(e.data.shape() == tg::Shape{3, 4, 4});
    CHECK(e.target.shape() == tg::Shape{});
    CHECK(e.target.item<int64_t>() == 10);
    CHECK(e.data.at({2, 1, 3}) == coded(3, 2, 1, 3));

    nn::DataLoader loader(data, {.batch_size = 2, .shuffle = false});
    CHECK(loader.num_batches() == 3);
    CHECK(loader.dataset().size() == 5);
    int64_t first = 0;
    for (const auto& [x, y] : loader) {
        CHECK(x.dtype() == tg::kFloat32);
        CHECK(y.dtype() == tg::kInt64);
        CHECK(y.shape() == tg::Shape{x.size(0)});
        CHECK(x.shape() == tg::Shape{x.size(0), 3, 4, 4});
        for (int64_t b = 0; b < x.size(0); ++b) {
            CHECK(y.at({b}) == 7 + first + b);
            for (int64_t c = 0; c < 3; ++c) CHECK(x.at({b, c, 2, 1}) == coded(first + b, c, 2, 1));
        }
        first += x.size(0);
    }
    CHECK(first == 5);
}

TEST_CASE("transforms on 3-channel batches: one crop offset and one flip for all channels, normalize per channel") {
    const tg::Tensor x = coded_images(6);
    // Flip with p = 1 mirrors every channel.
    tg::Generator gen(5);
    const tg::Tensor flipped = nn::random_horizontal_flip(1.0)(x, gen);
    for (int64_t c = 0; c < 3; ++c) CHECK(flipped.at({4, c, 1, 0}) == coded(4, c, 1, 3));
    // A 4x4 crop of the image padded by 1: one offset (dr, dk) in [-1, 1]^2 per image, the same
    // for its three channels, zeros where it reads the padding.
    const tg::Tensor cropped = nn::random_crop(4, 1)(x, gen);
    REQUIRE(cropped.shape() == tg::Shape{6, 3, 4, 4});
    std::set<std::pair<int, int>> offsets;
    for (int64_t b = 0; b < 6; ++b) {
        int matches = 0;
        for (int dr = -1; dr <= 1; ++dr)
            for (int dk = -1; dk <= 1; ++dk) {
                bool all = true;
                for (int64_t c = 0; c < 3; ++c)
                    for (int64_t r = 0; r < 4; ++r)
                        for (int64_t k = 0; k < 4; ++k) {
                            const int64_t sr = r + dr, sk = k + dk;
                            const bool inside = sr >= 0 && sr < 4 && sk >= 0 && sk < 4;
                            all = all && cropped.at({b, c, r, k}) == (inside ? coded(b, c, sr, sk) : 0.0f);
                        }
                if (all) {
                    ++matches;
                    offsets.insert({dr, dk});
                }
            }
        CHECK(matches == 1);
    }
    CHECK(offsets.size() > 1);  // the offsets are drawn, not fixed
    // torchvision's Normalize(mean, std) with one value per channel.
    const tg::Tensor normalized = nn::normalize({10.0, 20.0, 30.0}, {2.0, 4.0, 5.0})(x, gen);
    const double mean[3] = {10, 20, 30}, stddev[3] = {2, 4, 5};
    for (int64_t c = 0; c < 3; ++c)
        CHECK(normalized.at({5, c, 3, 2}) == doctest::Approx((coded(5, c, 3, 2) - mean[c]) / stddev[c]));
    CHECK_THROWS_WITH_AS(nn::normalize({0.5, 0.5}, {1.0, 1.0})(x, gen), doctest::Contains("2 means for 3 channels"),
                         std::invalid_argument);

    // Through a loader: the transform sees the stacked batch.
    auto data = std::make_shared<nn::TensorDataset>(x, tg::from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5}, {6}));
    nn::DataLoader loader(data, {.batch_size = 4, .shuffle = false,
                                 .transform = nn::compose({nn::random_horizontal_flip(1.0),
                                                           nn::normalize({10.0, 20.0, 30.0}, {2.0, 4.0, 5.0})})});
    const nn::Batch b = *loader.begin();
    CHECK(b.images.shape() == tg::Shape{4, 3, 4, 4});
    CHECK(b.images.at({2, 1, 0, 0}) == doctest::Approx((coded(2, 1, 0, 3) - 20.0) / 4.0));
}

TEST_CASE("TensorDataset for regression: float features and float targets stay paired through shuffling") {
    const int64_t n = 23;
    std::vector<double> features, targets;
    for (int64_t i = 0; i < n; ++i) {
        features.insert(features.end(), {double(i), 0.5 * i, -1.0});
        targets.insert(targets.end(), {2.0 * i + 0.25, double(i * i)});
    }
    auto data = std::make_shared<nn::TensorDataset>(tg::from_vector(features, {n, 3}, {.dtype = tg::kFloat64}),
                                                    tg::from_vector(targets, {n, 2}).to(tg::kFloat32));
    nn::DataLoader loader(data, {.batch_size = 5, .seed = 3});
    std::set<int64_t> seen;
    std::vector<int64_t> order;
    for (const auto& [x, y] : loader) {
        CHECK(x.dtype() == tg::kFloat64);
        CHECK(y.dtype() == tg::kFloat32);
        CHECK(y.shape() == tg::Shape{x.size(0), 2});
        for (int64_t b = 0; b < x.size(0); ++b) {
            const auto i = static_cast<int64_t>(x.at({b, 0}));
            CHECK(x.at({b, 1}) == 0.5 * i);
            CHECK(y.at({b, 0}) == 2.0 * i + 0.25);
            CHECK(y.at({b, 1}) == double(i * i));
            seen.insert(i);
            order.push_back(i);
        }
    }
    CHECK(seen.size() == 23);
    CHECK(order.size() == 23);
    CHECK(!std::is_sorted(order.begin(), order.end()));
}

TEST_CASE("an ImageDataset is a Dataset; its loader normalises as before, given by value or shared") {
    const nn::ImageDataset d = tiny(6);
    CHECK(d.size() == 6);
    const nn::Example e = d.get(4);
    CHECK(e.data.shape() == tg::Shape{1, 2, 2});
    CHECK(e.data.dtype() == tg::kFloat32);
    CHECK(e.data.at({0, 1, 1}) == doctest::Approx(4 / 255.0));
    CHECK(e.target.item<int64_t>() == 4);
    nn::DataLoader by_value(d, {.batch_size = 6, .shuffle = false, .mean = 0.01, .std = 0.5});
    nn::DataLoader shared(std::make_shared<nn::ImageDataset>(d), {.batch_size = 6, .shuffle = false, .mean = 0.01, .std = 0.5});
    const nn::Batch a = *by_value.begin(), b = *shared.begin();
    CHECK(a.images.to_vector<float>() == b.images.to_vector<float>());
    CHECK(a.images.at({3, 0, 0, 1}) == doctest::Approx((3 / 255.0 - 0.01) / 0.5));
    CHECK(by_value.dataset().size() == 6);
}

TEST_CASE("datasets and the loader: clear errors for mismatched counts, bad indices and items of different shapes") {
    auto message = [](auto&& fn) -> std::string {
        try {
            fn();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "no std::invalid_argument";
    };
    const std::string counts = message([] { nn::TensorDataset(tg::zeros({5, 3}), tg::zeros({4})); });
    CHECK(counts.find("TensorDataset") != std::string::npos);
    CHECK(counts.find("[5,3]") != std::string::npos);
    CHECK(counts.find("[4]") != std::string::npos);
    CHECK(counts.find("one target per item") != std::string::npos);
    CHECK(message([] { nn::TensorDataset(tg::zeros({}), tg::zeros({1})); }).find("first dimension") != std::string::npos);
    CHECK(message([] { nn::TensorDataset(tg::Tensor(), tg::zeros({1})); }).find("undefined") != std::string::npos);

    const nn::TensorDataset data(tg::zeros({3, 2}), tg::zeros({3}));
    CHECK(message([&] { data.get(3); }).find("TensorDataset::get: index 3 is out of range for a dataset of 3 items (valid: 0..2)") !=
          std::string::npos);
    CHECK(message([&] { data.get(-1); }).find("index -1") != std::string::npos);
    CHECK(message([] { tiny(2).get(2); }).find("ImageDataset::get: index 2") != std::string::npos);

    nn::DataLoader ragged(std::make_shared<Ragged>(), {.batch_size = 3, .shuffle = false});
    const std::string stacking = message([&] { ragged.begin(); });
    CHECK(stacking.find("DataLoader: cannot stack the batch's data") != std::string::npos);
    CHECK(stacking.find("item 1 is [2,3]") != std::string::npos);
    CHECK(stacking.find("item 0 is [2,4]") != std::string::npos);
    CHECK(stacking.find("one shape") != std::string::npos);
    // One item a batch stacks fine.
    nn::DataLoader single(std::make_shared<Ragged>(), {.batch_size = 1, .shuffle = false});
    int64_t batches = 0;
    for (const nn::Batch& b : single) batches += b.images.size(0);
    CHECK(batches == 3);

    auto tensors = std::make_shared<nn::TensorDataset>(tg::zeros({3, 2}), tg::zeros({3}));
    CHECK(message([&] { nn::DataLoader(tensors, {.mean = 0.5, .std = 0.2}); }).find("nn::normalize") != std::string::npos);
    CHECK(message([] { nn::DataLoader(std::shared_ptr<nn::Dataset>(), {}); }).find("null") != std::string::npos);
}
