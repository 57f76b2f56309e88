// libFuzzer target for the safetensors reader. Each input is read twice: as a whole file (which
// exercises the header length checks) and as the text of a header, given a matching length and
// 64 bytes of data, so that mutations of the JSON reach the entry, offset and tiling checks. A
// malformed input must end in a std::exception; a file that parses must write back to tensors
// with the same names, in the same order, and the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "nn/safetensors.hpp"

namespace nn = tapegrad::nn;

namespace {
constexpr std::size_t kDataBytes = 64;

void read(const uint8_t* data, std::size_t size) {
    nn::Safetensors parsed;
    try {
        parsed = nn::parse_safetensors(data, size, "fuzz");
    } catch (const std::exception&) {
        return;
    }
    const std::vector<uint8_t> written = nn::serialize_safetensors(parsed.tensors, parsed.metadata);
    const nn::Safetensors again = nn::parse_safetensors(written.data(), written.size(), "fuzz, written back");
    if (again.metadata != parsed.metadata || again.tensors.size() != parsed.tensors.size()) std::abort();
    for (std::size_t i = 0; i < parsed.tensors.size(); ++i) {
        const auto& [name, t] = parsed.tensors[i];
        const auto& [name_again, t_again] = again.tensors[i];
        const std::size_t bytes = static_cast<std::size_t>(t.numel()) * tapegrad::element_size(t.dtype());
        if (name != name_again || t.dtype() != t_again.dtype() || t.shape() != t_again.shape() ||
            (bytes && std::memcmp(t.data_ptr(), t_again.data_ptr(), bytes) != 0))
            std::abort();
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    read(data, size);
    std::vector<uint8_t> file(8 + size + kDataBytes);
    const uint64_t header_size = size;
    std::memcpy(file.data(), &header_size, 8);
    if (size) std::memcpy(file.data() + 8, data, size);
    for (std::size_t i = 0; i < kDataBytes; ++i) file[8 + size + i] = static_cast<uint8_t>(i * 37);
    read(file.data(), file.size());
    return 0;
}
