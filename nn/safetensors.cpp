#include "nn/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>

#include "nn/file_io.hpp"

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace tapegrad::nn {
namespace {

using Json = nlohmann::ordered_json;

// The reference implementation's limit: no real header comes near it.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
const std::string kMetadataKey = "__metadata__";

// How a file's dtype is stored and what it loads as.
struct StoredType {
    const char* name;
    std::size_t size;
    DType loads_as;
};

constexpr StoredType kStoredTypes[] = {
    {"F32", 4, kFloat32}, {"F64", 8, kFloat64}, {"I64", 8, kInt64}, {"I32", 4, kInt32},
    {"F16", 2, kFloat32}, {"BF16", 2, kFloat32},
};

const StoredType* stored_type(const std::string& name) {
    for (const StoredType& t : kStoredTypes)
        if (name == t.name) return &t;
    return nullptr;
}

const char* stored_name(DType dtype) {
    for (const StoredType& t : kStoredTypes)
        if (t.loads_as == dtype && t.size == element_size(dtype)) return t.name;
    throw std::logic_error("safetensors: no stored dtype for " + std::string(dtype_name(dtype)));
}

// IEEE half to float, exactly (every half is a float).
float half_to_float(uint16_t h) {
    const float sign = (h & 0x8000u) ? -1.0f : 1.0f;
    const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);  // zero, subnormal
    const uint32_t sign_bit = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t bits = exponent == 0x1f ? sign_bit | 0x7f800000u | (mantissa << 13)  // inf, NaN
                                           : sign_bit | ((exponent + 112) << 23) | (mantissa << 13);
    return std::bit_cast<float>(bits);
}

// bfloat16 is the upper half of a float32.
float bfloat16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

Tensor widen_to_float32(const uint8_t* src, int64_t numel, const Shape& shape, bool bfloat16) {
    Tensor t = empty(shape, {.dtype = kFloat32});
    float* out = t.data<float>();
    for (int64_t i = 0; i < numel; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        out[i] = bfloat16 ? bfloat16_to_float(v) : half_to_float(v);
    }
    return t;
}

// One header entry, checked against itself (dtype x shape = span) and the data section's size.
struct Entry {
    std::string name;
    const StoredType* type;
    Shape shape;
    int64_t numel;
    uint64_t begin, end;
};

class HeaderReader {
public:
    explicit HeaderReader(std::string context) : context_(std::move(context)) {}
    [[noreturn]] void fail(const std::string& problem) const { throw std::runtime_error(context_ + ": " + problem); }
    [[noreturn]] void fail(const std::string& name, const std::string& problem) const {
        fail("tensor '" + name + "' " + problem);
    }

    uint64_t unsigned_value(const Json& v, const std::string& name, const char* what) const {
        if (!v.is_number_unsigned()) fail(name, std::string("has ") + what + " " + v.dump() + ", not a non-negative integer");
        return v.get<uint64_t>();
    }

    Entry entry(const std::string& name, const Json& info, uint64_t data_size) const {
        if (!info.is_object()) fail(name, "is described by " + info.dump() + ", not an object {dtype, shape, data_offsets}");
        for (const char* key : {"dtype", "shape", "data_offsets"})
            if (!info.contains(key)) fail(name, std::string("has no \"") + key + "\"");
        const Json& dtype = info["dtype"];
        const StoredType* type = dtype.is_string() ? stored_type(dtype.get<std::string>()) : nullptr;
        if (!type)
            fail(name, "has dtype " + dtype.dump() +
                           ", which tapegrad does not load (F32, F64, I64, I32; F16 and BF16 as float32); convert it in "
                           "PyTorch first, e.g. tensor.float()");
        const Json& dims = info["shape"];
        if (!dims.is_array()) fail(name, "has shape " + dims.dump() + ", not a list of dimensions");
        if (dims.size() > kMaxDims) fail(name, "has " + std::to_string(dims.size()) + " dimensions (at most 8)");
        Shape shape;
        for (const Json& d : dims) {
            const uint64_t dim = unsigned_value(d, name, "a dimension");
            if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail(name, "has an invalid dimension " + d.dump());
            shape.push_back(static_cast<int64_t>(dim));
        }
        if (const std::string problem = detail::shape_problem(shape); !problem.empty()) fail(name, problem);
        const Json& offsets = info["data_offsets"];
        if (!offsets.is_array() || offsets.size() != 2) fail(name, "has data_offsets " + offsets.dump() + ", not [begin, end]");
        const uint64_t begin = unsigned_value(offsets[0], name, "a data offset");
        const uint64_t end = unsigned_value(offsets[1], name, "a data offset");
        const std::string range = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
        if (end < begin) fail(name, "has " + range + " that end before they begin");
        if (end > data_size)
            fail(name, "has " + range + " beyond the data, which holds " + std::to_string(data_size) +
                           " bytes; the file is truncated or its header is wrong");
        const int64_t numel = checked_numel(shape, "safetensors");
        // numel <= 2^40 (shape_problem), so the product cannot overflow.
        const uint64_t needed = static_cast<uint64_t>(numel) * type->size;
        if (end - begin != needed)
            fail(name, "has " + range + " (" + std::to_string(end - begin) + " bytes) but " + type->name + " " +
                           to_string(shape) + " needs " + std::to_string(needed) + " bytes");
        return {name, type, shape, numel, begin, end};
    }

    // The entries' spans, sorted, must tile [0, data_size): a hole or an overlap means the header lies.
    void check_tiling(std::vector<Entry>& entries, uint64_t data_size) const {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
        uint64_t covered = 0;
        const Entry* previous = nullptr;
        for (const Entry& e : entries) {
            if (e.begin < covered)
                fail(e.name, "has data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                 "] that overlap those of '" + previous->name + "' (which end at " + std::to_string(covered) + ")");
            if (e.begin > covered)
                fail(e.name, "has data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] that leave bytes [" +
                                 std::to_string(covered) + ", " + std::to_string(e.begin) + ") of the data in no tensor");
            covered = e.end;
            previous = &e;
        }
        if (covered != data_size)
            fail("has " + std::to_string(data_size - covered) + " bytes of data after the last tensor's (bytes [" +
                 std::to_string(covered) + ", " + std::to_string(data_size) + ") are in no tensor)");
    }

private:
    std::string context_;
};

SafetensorsMetadata read_metadata(const Json& value, const HeaderReader& reader) {
    if (!value.is_object()) reader.fail("has \"__metadata__\" " + value.dump() + ", not an object of strings");
    SafetensorsMetadata metadata;
    for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) reader.fail("has \"__metadata__\" entry '" + key + "' = " + v.dump() + ", not a string");
        metadata.emplace(key, v.get<std::string>());
    }
    return metadata;
}

Safetensors decode(const uint8_t* data, std::size_t size, const std::string& context) {
    const HeaderReader reader(context);
    if (size < 8) reader.fail("truncated: " + std::to_string(size) + " bytes, fewer than the 8 of the header length");
    uint64_t header_size;
    std::memcpy(&header_size, data, 8);
    if (header_size > kMaxHeaderBytes)
        reader.fail("announces a header of " + std::to_string(header_size) + " bytes, more than the 100 MiB limit; not a safetensors file?");
    if (header_size > size - 8)
        reader.fail("truncated: the header announces " + std::to_string(header_size) + " bytes but only " +
                    std::to_string(size - 8) + " follow");
    const auto* header_begin = reinterpret_cast<const char*>(data + 8);
    // nlohmann keeps the last of two equal keys: catch repeats as they are parsed.
    std::set<std::string> names;
    Json header;
    try {
        header = Json::parse(header_begin, header_begin + header_size, [&](int depth, Json::parse_event_t event, Json& parsed) {
            if (depth == 1 && event == Json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second)
                reader.fail("has the name '" + parsed.get<std::string>() + "' twice in its header");
            return true;
        });
    } catch (const Json::exception& e) {
        reader.fail(std::string("has a header that is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) reader.fail("has a header that is " + std::string(header.type_name()) + ", not a JSON object");

    const uint64_t data_size = size - 8 - header_size;
    const uint8_t* data_section = data + 8 + header_size;
    Safetensors out;
    std::vector<Entry> entries;
    for (const auto& [name, info] : header.items()) {
        if (name == kMetadataKey) out.metadata = read_metadata(info, reader);
        else entries.push_back(reader.entry(name, info, data_size));
    }
    reader.check_tiling(entries, data_size);
    for (const Entry& e : entries) {
        const uint8_t* src = data_section + e.begin;
        Tensor t;
        if (e.type->size == element_size(e.type->loads_as)) {
            t = empty(e.shape, {.dtype = e.type->loads_as});
            if (e.end > e.begin) std::memcpy(t.data_ptr(), src, e.end - e.begin);
        } else {
            t = widen_to_float32(src, e.numel, e.shape, std::string(e.type->name) == "BF16");
        }
        out.tensors.emplace_back(e.name, std::move(t));
    }
    return out;
}

// serialize_safetensors(), with errors (std::invalid_argument) that start with `who`.
std::vector<uint8_t> encode(const NamedTensors& tensors, const SafetensorsMetadata& metadata, const std::string& who) {
    std::set<std::string> names;
    Json header = Json::object();
    if (!metadata.empty()) {
        Json meta = Json::object();
        for (const auto& [k, v] : metadata) meta[k] = v;
        header[kMetadataKey] = std::move(meta);
    }
    uint64_t offset = 0;
    NamedTensors dense;
    for (const auto& [name, t] : tensors) {
        if (name == kMetadataKey)
            throw std::invalid_argument(who + ": the name '" + kMetadataKey + "' is the format's own; give the tensor another name");
        if (!names.insert(name).second)
            throw std::invalid_argument(who + ": the name '" + name + "' appears twice; give every tensor its own name");
        if (!t.defined()) throw std::invalid_argument(who + ": '" + name + "' is an undefined tensor");
        const Tensor d = t.detach().contiguous();
        const uint64_t bytes = static_cast<uint64_t>(d.numel()) * element_size(d.dtype());
        header[name] = {{"dtype", stored_name(d.dtype())}, {"shape", Json(std::vector<int64_t>(d.shape().begin(), d.shape().end()))},
                        {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
        dense.emplace_back(name, d);
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const Json::exception& e) {
        throw std::invalid_argument(who + ": a tensor name or a metadata string is not valid UTF-8 (" + e.what() + ")");
    }
    // Spaces up to a multiple of 8, as the reference implementation writes, so that the data starts aligned.
    text.append((8 - text.size() % 8) % 8, ' ');
    std::vector<uint8_t> out(8 + text.size() + offset);
    const uint64_t header_size = text.size();
    std::memcpy(out.data(), &header_size, 8);
    std::memcpy(out.data() + 8, text.data(), text.size());
    uint8_t* dst = out.data() + 8 + text.size();
    for (const auto& [name, d] : dense) {
        const std::size_t bytes = static_cast<std::size_t>(d.numel()) * element_size(d.dtype());
        if (bytes) std::memcpy(dst, d.data_ptr(), bytes);
        dst += bytes;
    }
    return out;
}

Safetensors read_as(const std::string& who, const std::string& path) {
    const std::vector<uint8_t> bytes =
        detail::read_whole_file(who, path, std::numeric_limits<std::size_t>::max(), "the address space");
    return decode(bytes.data(), bytes.size(), who + ": " + path);
}

void save_as(const std::string& who, const std::string& path, const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
    const std::vector<uint8_t> bytes = encode(tensors, metadata, who);
    detail::write_file_atomically(who, path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

}  // namespace

Safetensors parse_safetensors(const uint8_t* data, std::size_t size, const std::string& source) {
    return decode(data, size, "parse_safetensors: " + source);
}

std::vector<uint8_t> serialize_safetensors(const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
    return encode(tensors, metadata, "serialize_safetensors");
}

Safetensors read_safetensors(const std::string& path) { return read_as("read_safetensors", path); }

NamedTensors load_safetensors(const std::string& path) { return read_as("load_safetensors", path).tensors; }

Tensor load_safetensors_tensor(const std::string& path, const std::string& name) {
    const std::string who = "load_safetensors_tensor";
    Safetensors file = read_as(who, path);
    std::string held;
    for (auto& [n, t] : file.tensors) {
        if (n == name) return t;
        if (held.size() < 200) held += (held.empty() ? "'" : ", '") + n + "'";
    }
    throw std::invalid_argument(who + ": " + path + " has no tensor '" + name + "'; it holds " +
                                (held.empty() ? std::string("none") : held + (held.size() >= 200 ? ", ..." : "")));
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
    save_as("save_safetensors", path, tensors, metadata);
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors, const SafetensorsMetadata& metadata) {
    save_as("save_safetensors", path, NamedTensors(tensors.begin(), tensors.end()), metadata);
}

void save_safetensors(const std::string& path, const std::string& name, const Tensor& tensor, const SafetensorsMetadata& metadata) {
    save_as("save_safetensors", path, {{name, tensor}}, metadata);
}

}  // namespace tapegrad::nn
