#include "nn/dataset.hpp"

#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "nn/file_io.hpp"

namespace tapegrad::nn {
namespace {

constexpr int64_t kMaxItems = 10'000'000;
constexpr int64_t kMaxSide = 4096;

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
    throw std::runtime_error(source + ": " + problem);
}

uint32_t big_endian_u32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

// read_idx, with errors that start with `who`.
IdxArray read_idx_as(const std::string& who, const std::string& path, uint32_t expected_magic) {
    const std::vector<uint8_t> raw = detail::read_whole_file(who, path, kIdxMaxBytes, "1 GiB");
    return decode_idx(raw.data(), raw.size(), expected_magic, who + ": " + path);
}

}  // namespace

IdxArray parse_idx(const uint8_t* data, std::size_t size, uint32_t expected_magic, const std::string& source) {
    if (size < 4) fail(source, "too short for an IDX header (" + std::to_string(size) + " bytes)");
    const uint32_t magic = big_endian_u32(data);
    if (magic != expected_magic) {
        const bool idx_like = data[0] == 0 && data[1] == 0;
        fail(source, "bad magic number " + hex(magic) + ", expected " + hex(expected_magic) +
                         (idx_like ? " (wrong IDX type or rank)" : " (not an IDX file)"));
    }
    const std::size_t ndim = data[3];
    if (size < 4 + 4 * ndim)
        fail(source, "truncated header: " + std::to_string(ndim) + " dimensions need " + std::to_string(4 + 4 * ndim) +
                         " bytes, the file has " + std::to_string(size));
    IdxArray out;
    uint64_t total = 1;
    for (std::size_t d = 0; d < ndim; ++d) {
        const uint32_t dim = big_endian_u32(data + 4 + 4 * d);
        const int64_t limit = d == 0 ? kMaxItems : kMaxSide;
        if (dim == 0 || dim > static_cast<uint64_t>(limit))
            fail(source, "dimension " + std::to_string(d) + " is " + std::to_string(dim) + " (allowed 1.." +
                             std::to_string(limit) + ")");
        out.dims.push_back(dim);
        total *= dim;  // at most 1e7 * 4096 * 4096 per step: cannot overflow 64 bits for 3 dims
        if (total > kIdxMaxBytes) fail(source, "the array is larger than 1 GiB");
    }
    const std::size_t header = 4 + 4 * ndim;
    if (size - header != total)
        fail(source, "the dimensions announce " + std::to_string(total) + " bytes of data but the file has " +
                         std::to_string(size - header) + (size - header < total ? " (truncated)" : " (trailing bytes)"));
    out.data.assign(data + header, data + size);
    return out;
}

std::vector<uint8_t> maybe_gunzip(const uint8_t* data, std::size_t size, const std::string& source) {
    if (size < 2 || data[0] != 0x1f || data[1] != 0x8b) return {data, data + size};
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(source, "zlib initialisation failed");
    std::vector<uint8_t> out;
    std::size_t in_done = 0;
    int rc = Z_OK;
    std::vector<uint8_t> chunk(1 << 20);
    while (rc != Z_STREAM_END) {
        if (zs.avail_in == 0) {
            const std::size_t n = std::min<std::size_t>(size - in_done, 1u << 30);
            zs.next_in = const_cast<Bytef*>(data + in_done);
            zs.avail_in = static_cast<uInt>(n);
            in_done += n;
        }
        zs.next_out = chunk.data();
        zs.avail_out = static_cast<uInt>(chunk.size());
        rc = inflate(&zs, Z_NO_FLUSH);
        const std::size_t produced = chunk.size() - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END) {
            const std::string msg = zs.msg ? zs.msg : "no further detail";
            inflateEnd(&zs);
            if (rc == Z_BUF_ERROR) fail(source, "truncated gzip stream");
            fail(source, "corrupt gzip data (" + msg + ")");
        }
        if (out.size() + produced > kIdxMaxBytes) {
            inflateEnd(&zs);
            fail(source, "decompresses to more than 1 GiB");
        }
        out.insert(out.end(), chunk.data(), chunk.data() + produced);
        if (rc == Z_OK && produced == 0 && zs.avail_in == 0 && in_done == size) {
            inflateEnd(&zs);
            fail(source, "truncated gzip stream");
        }
    }
    inflateEnd(&zs);
    return out;
}

IdxArray decode_idx(const uint8_t* data, std::size_t size, uint32_t expected_magic, const std::string& source) {
    const std::vector<uint8_t> bytes = maybe_gunzip(data, size, source);
    return parse_idx(bytes.data(), bytes.size(), expected_magic, source);
}

IdxArray read_idx(const std::string& path, uint32_t expected_magic) { return read_idx_as("read_idx", path, expected_magic); }

// ---------------------------------------------------------------- ImageDataset

namespace {
// a * b for non-negative sizes, checked before multiplying.
int64_t checked_product(int64_t a, int64_t b, const std::string& who, const std::string& what) {
    int64_t product = 0;
    if (__builtin_mul_overflow(a, b, &product))
        throw std::invalid_argument(who + ": " + what + " (" + std::to_string(a) + " x " + std::to_string(b) +
                                    ") overflows 64 bits");
    return product;
}
}  // namespace

void ImageDataset::check(const std::string& who) const {
    if (count < 0 || rows < 0 || cols < 0)
        throw std::invalid_argument(who + ": the dataset's sizes must be non-negative, got count " + std::to_string(count) +
                                    ", rows " + std::to_string(rows) + ", cols " + std::to_string(cols));
    const int64_t plane = checked_product(rows, cols, who, "rows x cols");
    const int64_t total = checked_product(count, plane, who, "count x rows x cols");
    if (pixels.size() != static_cast<uint64_t>(total) || labels.size() != static_cast<uint64_t>(count))
        throw std::invalid_argument(who + ": the dataset has " + std::to_string(pixels.size()) + " pixels and " +
                                    std::to_string(labels.size()) + " labels, but count " + std::to_string(count) +
                                    " x " + std::to_string(rows) + " x " + std::to_string(cols) + " needs " +
                                    std::to_string(total) + " and " + std::to_string(count));
}

ImageDataset ImageDataset::head(int64_t n) const {
    check("ImageDataset::head");
    ImageDataset out;
    out.count = std::clamp<int64_t>(n, 0, count);
    out.rows = rows;
    out.cols = cols;
    out.pixels.assign(pixels.begin(), pixels.begin() + out.count * rows * cols);
    out.labels.assign(labels.begin(), labels.begin() + out.count);
    return out;
}

std::pair<double, double> ImageDataset::pixel_mean_std() const {
    if (pixels.empty()) throw std::invalid_argument("ImageDataset: no pixels to compute a mean from");
    double sum = 0, sum_sq = 0;
    for (uint8_t p : pixels) {
        const double x = p / 255.0;
        sum += x;
        sum_sq += x * x;
    }
    const double n = static_cast<double>(pixels.size());
    const double mean = sum / n;
    return {mean, std::sqrt(std::max(0.0, sum_sq / n - mean * mean))};
}

ImageDataset load_mnist(const std::string& dir, Split split) {
    namespace fs = std::filesystem;
    const std::string who = "load_mnist";
    std::error_code ec;  // the overloads that report through ec, so that no filesystem_error escapes
    if (!fs::is_directory(dir, ec))
        throw std::runtime_error(who + ": dataset directory " + dir +
                                 (fs::exists(dir, ec) ? " is not a directory" : " does not exist") +
                                 " (install dataset-fashion-mnist or pass a directory of MNIST-format files)");
    const std::string prefix = split == Split::Train ? "train" : "t10k";
    auto find = [&](const std::string& stem) {
        for (const std::string& name : {stem, stem + ".gz"}) {
            const fs::path p = fs::path(dir) / name;
            if (fs::exists(p, ec)) return p.string();
        }
        throw std::runtime_error(who + ": dataset directory " + dir + " has neither " + stem + " nor " + stem + ".gz");
    };
    const std::string image_path = find(prefix + "-images-idx3-ubyte");
    const std::string label_path = find(prefix + "-labels-idx1-ubyte");
    IdxArray images = read_idx_as(who, image_path, kIdxImagesMagic);
    IdxArray labels = read_idx_as(who, label_path, kIdxLabelsMagic);
    if (images.dims[0] != labels.dims[0])
        throw std::runtime_error(who + ": " + label_path + " has " + std::to_string(labels.dims[0]) + " labels but " + image_path +
                                 " has " + std::to_string(images.dims[0]) + " images");
    ImageDataset out;
    out.count = images.dims[0];
    out.rows = images.dims[1];
    out.cols = images.dims[2];
    out.pixels = std::move(images.data);
    out.labels.assign(labels.data.begin(), labels.data.end());
    return out;
}

// ---------------------------------------------------------------- datasets

namespace {
std::string out_of_range_message(const std::string& who, int64_t index, int64_t size) {
    return who + ": index " + std::to_string(index) + " is out of range for a dataset of " + std::to_string(size) +
           " items" + (size > 0 ? " (valid: 0.." + std::to_string(size - 1) + ")" : "");
}
}  // namespace

TensorDataset::TensorDataset(Tensor data, Tensor targets) {
    if (!data.defined() || !targets.defined())
        throw std::invalid_argument(std::string("TensorDataset: the ") + (data.defined() ? "targets are" : "data is") +
                                    " undefined; pass two tensors whose first dimension counts the items");
    if (data.dim() == 0 || targets.dim() == 0)
        throw std::invalid_argument("TensorDataset: the data " + describe(data) + " and the targets " + describe(targets) +
                                    " need a first dimension that counts the items; a 0-d tensor has none");
    if (data.size(0) != targets.size(0))
        throw std::invalid_argument("TensorDataset: the data " + describe(data) + " holds " + std::to_string(data.size(0)) +
                                    " items but the targets " + describe(targets) + " hold " +
                                    std::to_string(targets.size(0)) + "; give one target per item (first dimension)");
    data_ = data.detach();
    targets_ = targets.detach();
}

Example TensorDataset::get(int64_t index) const {
    if (index < 0 || index >= size()) throw std::invalid_argument(out_of_range_message("TensorDataset::get", index, size()));
    return {data_.select(0, index), targets_.select(0, index)};
}

Tensor ImageDataset::image(int64_t index, double mean, double stddev) const {
    check("ImageDataset::get");  // sizes only: cheap, and no read past the pixels of a struct filled by hand
    if (index < 0 || index >= count) throw std::invalid_argument(out_of_range_message("ImageDataset::get", index, count));
    const int64_t plane = rows * cols;
    Tensor out = empty({1, rows, cols});
    float* dst = out.data<float>();
    const uint8_t* src = pixels.data() + index * plane;
    const float scale = static_cast<float>(1.0 / (255.0 * stddev));
    const float shift = static_cast<float>(-mean / stddev);
    for (int64_t k = 0; k < plane; ++k) dst[k] = static_cast<float>(src[k]) * scale + shift;
    return out;
}

Tensor ImageDataset::label(int64_t index) const {
    check("ImageDataset::get");
    if (index < 0 || index >= count) throw std::invalid_argument(out_of_range_message("ImageDataset::get", index, count));
    Tensor out = empty({}, {.dtype = kInt64});
    *out.data<int64_t>() = labels[static_cast<std::size_t>(index)];
    return out;
}

}  // namespace tapegrad::nn
