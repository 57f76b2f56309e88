// libFuzzer target for the IDX reader: any bytes go through maybe_gunzip and then parse_idx with
// both magics (images and labels). A malformed input must end in a std::exception; anything else
// (a crash, a sanitizer report, a leak, a broken invariant) is a finding.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <vector>

#include "nn/data.hpp"

namespace nn = tapegrad::nn;

namespace {
// What a successful parse promises: the dims match the magic's rank and account for every byte.
void check(const nn::IdxArray& a, std::size_t rank) {
    if (a.dims.size() != rank) std::abort();
    uint64_t total = 1;
    for (int64_t d : a.dims) {
        if (d <= 0) std::abort();
        total *= static_cast<uint64_t>(d);
    }
    if (total != a.data.size()) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    std::vector<uint8_t> bytes;
    try {
        bytes = nn::maybe_gunzip(data, size, "fuzz");
    } catch (const std::exception&) {
        return 0;
    }
    if (bytes.size() > nn::kIdxMaxBytes) std::abort();
    try {
        check(nn::parse_idx(bytes.data(), bytes.size(), nn::kIdxImagesMagic, "fuzz"), 3);
    } catch (const std::exception&) {
    }
    try {
        check(nn::parse_idx(bytes.data(), bytes.size(), nn::kIdxLabelsMagic, "fuzz"), 1);
    } catch (const std::exception&) {
    }
    return 0;
}
