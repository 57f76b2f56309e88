#include "nn/serialize.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <stdexcept>

#include "engine/tensor_math.hpp"
#include "nn/optim.hpp"

static_assert(std::endian::native == std::endian::little, "the checkpoint format is little-endian");

namespace tapegrad::nn {
namespace {

constexpr char kMagic[8] = {'T', 'A', 'P', 'E', 'G', 'R', 'A', 'D'};
constexpr std::size_t kHeaderSize = 8 + 4 + 4 + 8 + 4;
constexpr uint32_t kMaxNameLength = 4096;
constexpr int64_t kMaxDim = int64_t{1} << 40;

template <class T>
void put(std::vector<uint8_t>& out, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
}

uint32_t crc_of(const uint8_t* data, std::size_t size) {
    uLong crc = crc32(0L, Z_NULL, 0);
    // zlib takes uInt lengths: feed it in chunks.
    while (size > 0) {
        const std::size_t chunk = std::min<std::size_t>(size, 1u << 30);
        crc = crc32(crc, data, static_cast<uInt>(chunk));
        data += chunk;
        size -= chunk;
    }
    return static_cast<uint32_t>(crc);
}

// Reads little-endian values from a byte range, throwing instead of reading past the end.
class Reader {
public:
    Reader(const uint8_t* data, std::size_t size, const std::string& source) : p_(data), left_(size), source_(source) {}
    template <class T>
    T get(const char* what) {
        T v;
        std::memcpy(&v, take(sizeof(T), what), sizeof(T));
        return v;
    }
    const uint8_t* take(std::size_t n, const char* what) {
        if (n > left_)
            fail(std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes but only " +
                 std::to_string(left_) + " remain");
        const uint8_t* at = p_;
        p_ += n;
        left_ -= n;
        return at;
    }
    std::size_t left() const { return left_; }
    [[noreturn]] void fail(const std::string& problem) const {
        throw std::runtime_error("checkpoint " + source_ + ": " + problem);
    }

private:
    const uint8_t* p_;
    std::size_t left_;
    const std::string& source_;
};

const std::string kModelPrefix = "model.";
const std::string kOptimizerPrefix = "optimizer.";
const std::string kEpochKey = "meta.epoch";
const std::string kGeneratorKey = "meta.generator";

}  // namespace

std::vector<uint8_t> serialize(const NamedTensors& tensors) {
    if (tensors.size() > std::numeric_limits<uint32_t>::max()) throw std::invalid_argument("serialize: too many tensors");
    std::vector<uint8_t> payload;
    for (const auto& [name, t] : tensors) {
        if (name.size() > kMaxNameLength)
            throw std::invalid_argument("serialize: the name '" + name.substr(0, 64) + "...' is too long");
        if (!t.defined()) throw std::invalid_argument("serialize: '" + name + "' is an undefined tensor");
        put<uint32_t>(payload, static_cast<uint32_t>(name.size()));
        payload.insert(payload.end(), name.begin(), name.end());
        put<uint8_t>(payload, static_cast<uint8_t>(t.dtype()));  // 0 float32, 1 float64, 2 int64, 3 int32
        put<uint8_t>(payload, static_cast<uint8_t>(t.dim()));
        for (int64_t d : t.shape()) put<int64_t>(payload, d);
        const Tensor dense = t.contiguous();
        const auto* bytes = static_cast<const uint8_t*>(dense.data_ptr());
        payload.insert(payload.end(), bytes, bytes + dense.numel() * element_size(dense.dtype()));
    }
    std::vector<uint8_t> out(8);
    std::memcpy(out.data(), kMagic, 8);
    out.reserve(kHeaderSize + payload.size());
    put<uint32_t>(out, kCheckpointVersion);
    put<uint32_t>(out, static_cast<uint32_t>(tensors.size()));
    put<uint64_t>(out, payload.size());
    put<uint32_t>(out, crc_of(payload.data(), payload.size()));
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

NamedTensors deserialize(const uint8_t* data, std::size_t size, const std::string& source) {
    Reader header(data, size, source);
    if (size < 8 || std::memcmp(data, kMagic, 8) != 0)
        header.fail("not a tapegrad checkpoint (the file does not start with \"TAPEGRAD\")");
    header.take(8, "magic");
    const auto version = header.get<uint32_t>("the version");
    if (version != kCheckpointVersion)
        header.fail("unsupported version " + std::to_string(version) + " (this build reads version " +
                    std::to_string(kCheckpointVersion) + ")");
    const auto count = header.get<uint32_t>("the entry count");
    const auto payload_size = header.get<uint64_t>("the payload size");
    const auto crc = header.get<uint32_t>("the checksum");
    if (payload_size != header.left())
        header.fail("truncated or padded: the header announces " + std::to_string(payload_size) +
                    " bytes of content but " + std::to_string(header.left()) + " follow");
    const uint8_t* payload = data + kHeaderSize;
    if (crc_of(payload, payload_size) != crc) header.fail("checksum mismatch: the file is corrupted");

    Reader r(payload, payload_size, source);
    NamedTensors out;
    std::set<std::string> seen;
    for (uint32_t e = 0; e < count; ++e) {
        const auto name_len = r.get<uint32_t>("a name length");
        if (name_len > kMaxNameLength) r.fail("entry " + std::to_string(e) + " has a name longer than 4096 bytes");
        const auto* name_bytes = r.take(name_len, "a name");
        std::string name(reinterpret_cast<const char*>(name_bytes), name_len);
        const auto dtype_code = r.get<uint8_t>("a dtype");
        if (dtype_code > 3) r.fail("'" + name + "' has an unknown dtype code " + std::to_string(dtype_code));
        const auto dtype = static_cast<DType>(dtype_code);
        const auto ndim = r.get<uint8_t>("a rank");
        if (ndim > kMaxDims) r.fail("'" + name + "' has " + std::to_string(ndim) + " dimensions (at most 8)");
        Shape shape;
        uint64_t numel = 1, extent = 1;
        for (uint8_t d = 0; d < ndim; ++d) {
            const auto dim = r.get<int64_t>("a dimension");
            if (dim < 0 || dim > kMaxDim) r.fail("'" + name + "' has an invalid dimension " + std::to_string(dim));
            shape.push_back(dim);
            // An empty tensor holds no bytes, but its strides are still the products of its other
            // dimensions: [0, 2^32, 2^32] would overflow them.
            if (dim > 0 && extent > static_cast<uint64_t>(kMaxDim / dim))
                r.fail("'" + name + "' has dimensions " + to_string(shape) + "... whose product is too large");
            extent *= static_cast<uint64_t>(std::max<int64_t>(dim, 1));
            // Checked against the remaining bytes at every step, so the product cannot overflow.
            numel *= static_cast<uint64_t>(dim);
            if (numel > r.left()) r.fail("'" + name + "' announces more elements than the file holds");
        }
        const uint64_t bytes = numel * element_size(dtype);
        const uint8_t* src = r.take(bytes, "tensor data");
        Tensor t = empty(shape, {.dtype = dtype});
        if (bytes) std::memcpy(t.data_ptr(), src, bytes);
        if (!seen.insert(name).second) r.fail("the name '" + name + "' appears twice");
        out.emplace_back(std::move(name), std::move(t));
    }
    if (r.left() != 0) r.fail(std::to_string(r.left()) + " unexpected bytes after the last entry");
    return out;
}

void save(const NamedTensors& tensors, const std::string& path) {
    const std::vector<uint8_t> bytes = serialize(tensors);
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::runtime_error("checkpoint " + path + ": cannot open " + tmp + " for writing");
        f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        if (!f.flush()) throw std::runtime_error("checkpoint " + path + ": writing " + tmp + " failed");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw std::runtime_error("checkpoint " + path + ": cannot rename " + tmp + " into place");
}

NamedTensors load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("checkpoint " + path + ": cannot open the file");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) throw std::runtime_error("checkpoint " + path + ": read error");
    return deserialize(bytes.data(), bytes.size(), path);
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer, int64_t epoch,
                     const Generator* generator) {
    NamedTensors all;
    for (auto& [n, t] : model.state_dict()) all.emplace_back(kModelPrefix + n, t);
    if (optimizer)
        for (auto& [n, t] : optimizer->state_dict()) all.emplace_back(kOptimizerPrefix + n, t);
    all.emplace_back(kEpochKey, scalar_tensor(static_cast<double>(epoch), {.dtype = kFloat64}));
    if (generator) {
        // float64 holds 53 bits exactly: store each 64-bit word as four 16-bit pieces.
        std::vector<double> pieces;
        for (uint64_t word : generator->state().s)
            for (int k = 0; k < 4; ++k) pieces.push_back(static_cast<double>((word >> (16 * k)) & 0xffff));
        all.emplace_back(kGeneratorKey, from_vector(pieces, {16}, {.dtype = kFloat64}));
    }
    save(all, path);
}

CheckpointInfo load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer) {
    const NamedTensors all = load(path);
    NamedTensors model_state, optimizer_state;
    CheckpointInfo info;
    bool has_epoch = false;
    for (const auto& [n, t] : all) {
        if (n.rfind(kModelPrefix, 0) == 0) model_state.emplace_back(n.substr(kModelPrefix.size()), t);
        else if (n.rfind(kOptimizerPrefix, 0) == 0) optimizer_state.emplace_back(n.substr(kOptimizerPrefix.size()), t);
        else if (n == kEpochKey && t.numel() == 1) {
            const double e = t.item();
            if (!(e >= 0 && e < 1e12 && std::floor(e) == e)) throw std::runtime_error("checkpoint " + path + ": invalid epoch counter");
            info.epoch = static_cast<int64_t>(e);
            has_epoch = true;
        } else if (n == kGeneratorKey && t.numel() == 16) {
            Generator::State st;
            const auto pieces = t.to_vector<double>();
            for (std::size_t w = 0; w < 4; ++w)
                for (std::size_t k = 0; k < 4; ++k) {
                    const double v = pieces[4 * w + k];
                    if (!(v >= 0 && v <= 0xffff))
                        throw std::runtime_error("checkpoint " + path + ": invalid generator state");
                    st.s[w] |= static_cast<uint64_t>(v) << (16 * k);
                }
            info.generator = st;
        } else {
            throw std::runtime_error("checkpoint " + path + ": unexpected entry '" + n + "' " + describe(t));
        }
    }
    if (!has_epoch) throw std::runtime_error("checkpoint " + path + ": no epoch counter; is it a training checkpoint?");
    // All or nothing: every part is checked before the model or the optimizer changes.
    Module::PreparedLoad model_load;
    std::optional<Optimizer::PreparedState> optimizer_load;
    try {
        model_load = model.prepare_load(model_state, true);
        if (optimizer) {
            if (optimizer_state.empty()) throw std::invalid_argument("it holds no optimizer state");
            optimizer_load = optimizer->prepare_load(optimizer_state);
        }
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("checkpoint " + path + ": " + e.what());
    }
    Module::commit_load(model_load);
    if (optimizer) optimizer->commit_load(std::move(*optimizer_load));
    return info;
}

}  // namespace tapegrad::nn
