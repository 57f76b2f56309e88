// safetensors files that lie: every check of nn/safetensors.cpp's reader meets a file that fails
// it, and must refuse it with a std::runtime_error that names the reader, the file, the tensor
// and what is wrong. The writer refuses, before touching the file, what the reader would refuse.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <optional>

#include "nn/safetensors.hpp"
#include "tapegrad.hpp"
#include "tests/error_text.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tapegrad::testing::contains;
using tapegrad::testing::slurp;
using tapegrad::testing::TempDir;
using tg::Tensor;

namespace {

// A file: the header's length (or `announced`), the header, `data_bytes` bytes of data.
std::string file_of(const std::string& header, std::size_t data_bytes, std::optional<uint64_t> announced = std::nullopt) {
    const uint64_t n = announced.value_or(header.size());
    std::string out(8, '\0');
    std::memcpy(out.data(), &n, 8);
    return out + header + std::string(data_bytes, '\x01');
}

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// The runtime_error load_safetensors throws on `path`, "" if none.
std::string load_error(const std::string& path) {
    try {
        nn::load_safetensors(path);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

struct Lie {
    const char* what;
    std::string bytes;
    std::string says;  // a part of the message after "load_safetensors: <path>: "
};

}  // namespace

TEST_CASE("safetensors: the reader accepts an honest file and refuses every lie, naming the file and the tensor") {
    TempDir dir("safetensors_lies");
    const std::string path = dir / "lie.safetensors";
    const std::string a = entry("a", "F32", "[2]", "[0,8]");
    write(path, file_of("{" + a + "}", 8));
    REQUIRE(nn::load_safetensors(path).size() == 1);
    write(path, file_of("{}", 0));
    CHECK(nn::load_safetensors(path).empty());

    const std::vector<Lie> lies = {
        {"offsets beyond the data", file_of("{" + entry("a", "F32", "[4]", "[0,16]") + "}", 8),
         "tensor 'a' has data_offsets [0, 16] beyond the data, which holds 8 bytes"},
        {"offsets at the top of u64", file_of("{" + entry("a", "F32", "[0]", "[18446744073709551615,18446744073709551615]") + "}", 0),
         "tensor 'a' has data_offsets [18446744073709551615, 18446744073709551615] beyond the data"},
        {"offsets that end before they begin", file_of("{" + entry("a", "F32", "[2]", "[8,0]") + "}", 8),
         "tensor 'a' has data_offsets [8, 0] that end before they begin"},
        {"overlapping tensors", file_of("{" + a + "," + entry("b", "F32", "[2]", "[4,12]") + "}", 12),
         "tensor 'b' has data_offsets [4, 12] that overlap those of 'a' (which end at 8)"},
        {"a hole between tensors", file_of("{" + a + "," + entry("b", "F32", "[2]", "[12,20]") + "}", 20),
         "tensor 'b' has data_offsets [12, 20] that leave bytes [8, 12) of the data in no tensor"},
        {"a hole at the start", file_of("{" + entry("a", "F32", "[2]", "[4,12]") + "}", 12), "leave bytes [0, 4) of the data in no tensor"},
        {"bytes after the last tensor", file_of("{" + a + "}", 12), "has 4 bytes of data after the last tensor's"},
        {"data without tensors", file_of("{}", 4), "has 4 bytes of data after the last tensor's"},
        {"a dtype that does not match the span", file_of("{" + entry("a", "F64", "[2]", "[0,8]") + "}", 8),
         "tensor 'a' has data_offsets [0, 8] (8 bytes) but F64 [2] needs 16 bytes"},
        {"a shape that does not match the span", file_of("{" + entry("a", "F32", "[3]", "[0,8]") + "}", 8),
         "tensor 'a' has data_offsets [0, 8] (8 bytes) but F32 [3] needs 12 bytes"},
        {"a truncated file", file_of("{" + a + "}", 5), "tensor 'a' has data_offsets [0, 8] beyond the data, which holds 5 bytes"},
        {"a header length beyond the file", file_of("{" + a + "}", 8, 1000), "truncated: the header announces 1000 bytes but only "},
        {"a header length beyond any header", file_of("{}", 0, uint64_t{1} << 62), "more than the 100 MiB limit"},
        {"a file shorter than the length", std::string(5, '\0'), "truncated: 5 bytes, fewer than the 8 of the header length"},
        {"a JSON array", file_of("[1,2]", 0), "has a header that is array, not a JSON object"},
        {"a JSON number", file_of("42", 0), "has a header that is number, not a JSON object"},
        {"broken JSON", file_of("{\"a\":", 0), "has a header that is not valid JSON"},
        {"an empty header", file_of("", 0), "has a header that is not valid JSON"},
        {"a name that is not UTF-8", file_of("{\"\xff\":1}", 0), "has a header that is not valid JSON"},
        {"a name given twice", file_of("{" + a + "," + entry("a", "F32", "[2]", "[8,16]") + "}", 16), "has the name 'a' twice"},
        {"an unknown dtype", file_of("{" + entry("a", "U8", "[8]", "[0,8]") + "}", 8),
         "tensor 'a' has dtype \"U8\", which tapegrad does not load"},
        {"a negative dimension", file_of("{" + entry("a", "F32", "[-2]", "[0,8]") + "}", 8),
         "tensor 'a' has a dimension -2, not a non-negative integer"},
        {"a fractional dimension", file_of("{" + entry("a", "F32", "[2.5]", "[0,8]") + "}", 8),
         "tensor 'a' has a dimension 2.5, not a non-negative integer"},
        {"a dimension beyond 2^40", file_of("{" + entry("a", "F32", "[2199023255552]", "[0,8]") + "}", 8),
         "tensor 'a' has an invalid dimension 2199023255552"},
        {"dimensions whose product overflows u64", file_of("{" + entry("a", "F32", "[4294967296,4294967296,4294967296]", "[0,8]") + "}", 8),
         "whose product is too large"},
        {"a product of dimensions too large", file_of("{" + entry("a", "F32", "[1048576,1048576,2]", "[0,8]") + "}", 8),
         "tensor 'a' has dimensions [1048576,1048576,2] whose product is too large"},
        {"nine dimensions", file_of("{" + entry("a", "F32", "[1,1,1,1,1,1,1,1,2]", "[0,8]") + "}", 8),
         "tensor 'a' has 9 dimensions (at most 8)"},
        {"a shape that is not a list", file_of("{" + entry("a", "F32", "2", "[0,8]") + "}", 8), "tensor 'a' has shape 2, not a list"},
        {"one offset", file_of("{" + entry("a", "F32", "[2]", "[8]") + "}", 8), "tensor 'a' has data_offsets [8], not [begin, end]"},
        {"a negative offset", file_of("{" + entry("a", "F32", "[2]", "[-8,0]") + "}", 8),
         "tensor 'a' has a data offset -8, not a non-negative integer"},
        {"no shape", file_of("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "tensor 'a' has no \"shape\""},
        {"an entry that is not an object", file_of("{\"a\":[0,8]}", 8), "tensor 'a' is described by [0,8], not an object"},
        {"metadata that is not an object", file_of("{\"__metadata__\":[\"x\"]}", 0), "has \"__metadata__\" [\"x\"], not an object of strings"},
        {"metadata that is not a string", file_of("{\"__metadata__\":{\"epoch\":3}}", 0), "has \"__metadata__\" entry 'epoch' = 3, not a string"},
    };
    for (const Lie& lie : lies) {
        CAPTURE(lie.what);
        write(path, lie.bytes);
        const std::string error = load_error(path);
        INFO(error);
        CHECK(error.rfind("load_safetensors: " + path + ": ", 0) == 0);
        CHECK(contains(error, lie.says));
        // The in-memory reader refuses it the same way.
        CHECK_THROWS_AS(nn::parse_safetensors(reinterpret_cast<const uint8_t*>(lie.bytes.data()), lie.bytes.size()),
                        std::runtime_error);
    }
}

TEST_CASE("safetensors: the writer refuses what the reader would refuse and leaves the old file") {
    TempDir dir("safetensors_refuse");
    const std::string path = dir / "model.safetensors";
    nn::save_safetensors(path, "w", tg::ones({2}));
    const std::string before = slurp(path);
    auto refused = [&](const nn::NamedTensors& tensors, const nn::SafetensorsMetadata& metadata) {
        try {
            nn::save_safetensors(path, tensors, metadata);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(refused({{"w", tg::ones({2})}, {"w", tg::zeros({2})}}, {}) ==
          "save_safetensors: the name 'w' appears twice; give every tensor its own name");
    CHECK(refused({{"w", Tensor()}}, {}) == "save_safetensors: 'w' is an undefined tensor");
    CHECK(refused({{"__metadata__", tg::ones({1})}}, {}) ==
          "save_safetensors: the name '__metadata__' is the format's own; give the tensor another name");
    CHECK(contains(refused({{"bad\xff", tg::ones({1})}}, {}), "save_safetensors: a tensor name or a metadata string is not valid UTF-8"));
    CHECK(contains(refused({{"w", tg::ones({1})}}, {{"k", "\xc3"}}), "is not valid UTF-8"));
    CHECK(slurp(path) == before);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
}
