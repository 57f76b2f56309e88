// IDX reading (plain and gzip, good and malformed files written here) and the DataLoader.
#include <doctest/doctest.h>

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "nn/data.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace fs = std::filesystem;

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

struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& name) : path(fs::temp_directory_path() / ("tapegrad_test_" + name)) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

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
