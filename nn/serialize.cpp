#include "nn/serialize.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>

#include "engine/tensor_math.hpp"
#include "nn/file_io.hpp"
#include "nn/optim.hpp"

static_assert(std::endian::native == std::endian::little, "the checkpoint format is little-endian");

namespace tapegrad::nn {
namespace {

constexpr char kMagic[8] = {'T', 'A', 'P', 'E', 'G', 'R', 'A', 'D'};
constexpr std::size_t kHeaderSize = 8 + 4 + 4 + 8 + 4;
constexpr uint32_t kMaxNameLength = 4096;

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

// Reads little-endian values from a byte range, throwing instead of reading past the end. Errors
// start with `context` ("checkpoint model.tgck").
class Reader {
public:
    Reader(const uint8_t* data, std::size_t size, const std::string& context) : p_(data), left_(size), context_(context) {}
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
        throw std::runtime_error(context_ + ": " + problem);
    }

private:
    const uint8_t* p_;
    std::size_t left_;
    const std::string& context_;
};

const std::string kModelPrefix = "model.";
const std::string kOptimizerPrefix = "optimizer.";
const std::string kEpochKey = "meta.epoch";
const std::string kGeneratorKey = "meta.generator";
// The epoch counter a checkpoint holds: a whole number in [0, kEpochLimit), exact in float64.
constexpr double kEpochLimit = 1e12;

// serialize(), with errors (std::invalid_argument) that start with `who`. What the reader would
// refuse is refused here, before any byte is written (a tensor's shape is always readable).
std::vector<uint8_t> encode(const NamedTensors& tensors, const std::string& who) {
    if (tensors.size() > std::numeric_limits<uint32_t>::max())
        throw std::invalid_argument(who + ": " + std::to_string(tensors.size()) + " tensors, more than a checkpoint holds (2^32 - 1)");
    std::set<std::string> names;
    for (const auto& [name, t] : tensors) {
        if (name.size() > kMaxNameLength)
            throw std::invalid_argument(who + ": the name '" + name.substr(0, 64) + "...' is " +
                                        std::to_string(name.size()) + " bytes long; names hold at most 4096");
        if (!names.insert(name).second)
            throw std::invalid_argument(who + ": the name '" + name + "' appears twice; give every tensor its own name");
        if (!t.defined()) throw std::invalid_argument(who + ": '" + name + "' is an undefined tensor");
    }
    std::vector<uint8_t> payload;
    for (const auto& [name, t] : tensors) {
        put<uint32_t>(payload, static_cast<uint32_t>(name.size()));
        payload.insert(payload.end(), name.begin(), name.end());
        put<uint8_t>(payload, static_cast<uint8_t>(t.dtype()));  // 0 float32, 1 float64, 2 int64, 3 int32, 4 bool, 5 bfloat16
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

// deserialize(), with errors that start with `context`.
NamedTensors decode(const uint8_t* data, std::size_t size, const std::string& context) {
    Reader header(data, size, context);
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

    Reader r(payload, payload_size, context);
    NamedTensors out;
    std::set<std::string> seen;
    for (uint32_t e = 0; e < count; ++e) {
        const auto name_len = r.get<uint32_t>("a name length");
        if (name_len > kMaxNameLength) r.fail("entry " + std::to_string(e) + " has a name longer than 4096 bytes");
        const auto* name_bytes = r.take(name_len, "a name");
        std::string name(reinterpret_cast<const char*>(name_bytes), name_len);
        const auto dtype_code = r.get<uint8_t>("a dtype");
        if (dtype_code > static_cast<uint8_t>(kBFloat16)) r.fail("'" + name + "' has an unknown dtype code " + std::to_string(dtype_code));
        const auto dtype = static_cast<DType>(dtype_code);
        const auto ndim = r.get<uint8_t>("a rank");
        if (ndim > kMaxDims) r.fail("'" + name + "' has " + std::to_string(ndim) + " dimensions (at most 8)");
        Shape shape;
        uint64_t numel = 1;
        for (uint8_t d = 0; d < ndim; ++d) {
            shape.push_back(r.get<int64_t>("a dimension"));
            if (const std::string problem = detail::shape_problem(shape); !problem.empty()) r.fail("'" + name + "' " + problem);
            // Checked against the remaining bytes at every step, so the product cannot overflow.
            numel *= static_cast<uint64_t>(shape.back());
            if (numel > r.left()) r.fail("'" + name + "' announces more elements than the file holds");
        }
        const uint64_t bytes = numel * element_size(dtype);
        const uint8_t* src = r.take(bytes, "tensor data");
        // A bool byte other than 0 or 1 is not a bool value: reading it would be undefined behaviour.
        if (dtype == kBool && std::any_of(src, src + bytes, [](uint8_t b) { return b > 1; }))
            r.fail("'" + name + "' is bool but holds a byte other than 0 and 1");
        Tensor t = empty(shape, {.dtype = dtype});
        if (bytes) std::memcpy(t.data_ptr(), src, bytes);
        if (!seen.insert(name).second) r.fail("the name '" + name + "' appears twice");
        out.emplace_back(std::move(name), std::move(t));
    }
    if (r.left() != 0) r.fail(std::to_string(r.left()) + " unexpected bytes after the last entry");
    return out;
}

std::string checkpoint_context(const std::string& who, const std::string& path) { return who + ": checkpoint " + path; }

NamedTensors load_as(const std::string& who, const std::string& path) {
    const std::vector<uint8_t> bytes =
        detail::read_whole_file(who, path, std::numeric_limits<std::size_t>::max(), "the address space");
    return decode(bytes.data(), bytes.size(), checkpoint_context(who, path));
}

void save_as(const std::string& who, const NamedTensors& tensors, const std::string& path) {
    const std::vector<uint8_t> bytes = encode(tensors, who);
    detail::write_file_atomically(who, path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

}  // namespace

std::vector<uint8_t> serialize(const NamedTensors& tensors) { return encode(tensors, "serialize"); }

NamedTensors deserialize(const uint8_t* data, std::size_t size, const std::string& source) {
    return decode(data, size, "checkpoint " + source);
}

void save(const NamedTensors& tensors, const std::string& path) { save_as("nn::save", tensors, path); }

NamedTensors load(const std::string& path) { return load_as("nn::load", path); }

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer, int64_t epoch,
                     const Generator* generator) {
    if (epoch < 0 || static_cast<double>(epoch) >= kEpochLimit)
        throw std::invalid_argument("save_checkpoint: epoch " + std::to_string(epoch) + " for " + path +
                                    " is out of range; pass the number of finished epochs (0 <= epoch < 10^12)");
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
    save_as("save_checkpoint", all, path);
}

CheckpointInfo load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer) {
    const std::string who = "load_checkpoint";
    const std::string context = checkpoint_context(who, path);
    const NamedTensors all = load_as(who, path);
    NamedTensors model_state, optimizer_state;
    CheckpointInfo info;
    bool has_epoch = false;
    auto whole = [](double v, double limit) { return v >= 0 && v < limit && std::floor(v) == v; };
    for (const auto& [n, t] : all) {
        if (n.rfind(kModelPrefix, 0) == 0) model_state.emplace_back(n.substr(kModelPrefix.size()), t);
        else if (n.rfind(kOptimizerPrefix, 0) == 0) optimizer_state.emplace_back(n.substr(kOptimizerPrefix.size()), t);
        else if (n == kEpochKey && t.numel() == 1) {
            const double e = t.item();
            if (!whole(e, kEpochLimit)) throw std::runtime_error(context + ": invalid epoch counter " + describe(t));
            info.epoch = static_cast<int64_t>(e);
            has_epoch = true;
        } else if (n == kGeneratorKey && t.numel() == 16) {
            Generator::State st;
            const auto pieces = t.to_vector<double>();
            for (std::size_t w = 0; w < 4; ++w)
                for (std::size_t k = 0; k < 4; ++k) {
                    const double v = pieces[4 * w + k];
                    if (!whole(v, 0x10000)) throw std::runtime_error(context + ": invalid generator state");
                    st.s[w] |= static_cast<uint64_t>(v) << (16 * k);
                }
            info.generator = st;
        } else {
            throw std::runtime_error(context + ": unexpected entry '" + n + "' " + describe(t));
        }
    }
    if (!has_epoch) throw std::runtime_error(context + ": no epoch counter; is it a training checkpoint?");
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
        throw std::invalid_argument(context + ": " + e.what());
    }
    Module::commit_load(model_load);
    if (optimizer) optimizer->commit_load(std::move(*optimizer_load));
    return info;
}

}  // namespace tapegrad::nn
