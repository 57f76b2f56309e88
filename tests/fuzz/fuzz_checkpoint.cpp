// libFuzzer target for the checkpoint reader. Each input is read twice: as it is (which exercises
// the header checks: magic, version, payload size, checksum) and with the payload size and crc32
// fields rewritten to match the bytes that follow, so that mutations reach the entry parser
// instead of stopping at the checksum. A malformed input must end in a std::exception; a buffer
// that parses must serialize back to the very same bytes (the format is canonical).
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "nn/serialize.hpp"

namespace nn = tapegrad::nn;

namespace {
constexpr std::size_t kHeaderSize = 8 + 4 + 4 + 8 + 4;

void read(const uint8_t* data, std::size_t size) {
    nn::NamedTensors parsed;
    try {
        parsed = nn::deserialize(data, size, "fuzz");
    } catch (const std::exception&) {
        return;
    }
    const std::vector<uint8_t> again = nn::serialize(parsed);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    read(data, size);
    if (size < kHeaderSize) return 0;
    std::vector<uint8_t> fixed(data, data + size);
    const uint64_t payload_size = size - kHeaderSize;
    std::memcpy(fixed.data() + 16, &payload_size, 8);
    const uint32_t crc = static_cast<uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), fixed.data() + kHeaderSize, static_cast<uInt>(payload_size)));
    std::memcpy(fixed.data() + 24, &crc, 4);
    read(fixed.data(), fixed.size());
    return 0;
}
