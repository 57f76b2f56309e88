// The checkpoint format: round trips (tensors, model + optimizer + epoch + generator), and clean
// errors for corrupted, truncated and foreign input.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>

#include <zlib.h>

#include "engine/autograd.hpp"
#include "nn/optim.hpp"
#include "nn/serialize.hpp"
#include "ops/arithmetic.hpp"
#include "ops/reduce.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {
struct TwoLayer : nn::Module {
    Tensor w1, w2, stats;
    TwoLayer() : Module("TwoLayer") {
        tg::Generator gen(3);
        w1 = register_parameter("w1", tg::randn({2, 3}, gen));
        w2 = register_parameter("w2", tg::randn({3}, gen, {.dtype = tg::kFloat64}));
        stats = register_buffer("stats", tg::arange(4));
    }
    Tensor loss() { return (w1 * w1).sum() + w2.to(tg::kFloat32).sum(); }
};

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("tapegrad_test_" + name)).string();
}

std::string error_of(const std::vector<uint8_t>& bytes) {
    try {
        nn::deserialize(bytes.data(), bytes.size(), "test.ckpt");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no error";
}
}  // namespace

TEST_CASE("named tensors round-trip through bytes and files, dtypes, shapes and layouts included") {
    tg::Generator gen(0);
    nn::NamedTensors in = {{"a", tg::randn({2, 3, 4, 5}, gen)},
                           {"b.c", tg::randn({7}, gen, {.dtype = tg::kFloat64})},
                           {"scalar", tg::scalar_tensor(2.5)},
                           {"empty", tg::zeros({0, 3})},
                           {"transposed", tg::randn({3, 4}, gen).transpose(0, 1)}};
    const auto bytes = nn::serialize(in);
    const auto out = nn::deserialize(bytes.data(), bytes.size());
    REQUIRE(out.size() == in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        CHECK(out[i].first == in[i].first);
        CHECK(out[i].second.dtype() == in[i].second.dtype());
        CHECK(out[i].second.shape() == in[i].second.shape());
        CHECK(tg::max_abs_diff(out[i].second, in[i].second) == 0.0);
    }
    const std::string path = temp_path("roundtrip.ckpt");
    nn::save(in, path);
    CHECK(nn::load(path).size() == in.size());
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    std::filesystem::remove(path);
}

TEST_CASE("a training checkpoint restores model, optimizer, epoch and generator") {
    TwoLayer model;
    nn::AdamW opt(model.parameters(), {.lr = 0.01});
    model.loss().backward();
    opt.step();
    tg::Generator gen(42);
    gen.next_u64();
    const std::string path = temp_path("train.ckpt");
    nn::save_checkpoint(path, model, &opt, 7, &gen);

    TwoLayer restored;
    nn::AdamW opt2(restored.parameters(), {.lr = 0.5});
    const auto info = nn::load_checkpoint(path, restored, &opt2);
    CHECK(info.epoch == 7);
    REQUIRE(info.generator.has_value());
    tg::Generator gen2;
    gen2.set_state(*info.generator);
    CHECK(gen2.next_u64() == gen.next_u64());
    CHECK(tg::max_abs_diff(restored.w1, model.w1) == 0.0);
    CHECK(tg::max_abs_diff(restored.w2, model.w2) == 0.0);
    CHECK(opt2.lr() == 0.01);
    // Both continue identically.
    model.zero_grad();
    model.loss().backward();
    opt.step();
    restored.loss().backward();
    opt2.step();
    CHECK(tg::max_abs_diff(restored.w1, model.w1) == 0.0);

    // A model of another shape: the error names the checkpoint and the parameter.
    struct Other : nn::Module {
        Other() : Module("Other") {
            register_parameter("w1", tg::zeros({3, 3}));
            register_parameter("w2", tg::zeros({3}, {.dtype = tg::kFloat64}));
            register_buffer("stats", tg::zeros({4}));
        }
    } other;
    try {
        nn::load_checkpoint(path, other, nullptr);
        FAIL("expected an error");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("w1") != std::string::npos);
        CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
    std::filesystem::remove(path);
}

TEST_CASE("flipping any byte of the content gives a checksum error") {
    const auto good = nn::serialize({{"w", tg::ones({2, 2})}, {"b", tg::zeros({3}, {.dtype = tg::kFloat64})}});
    for (std::size_t i = 28; i < good.size(); ++i) {
        auto bad = good;
        bad[i] ^= 0x40;
        CHECK(error_of(bad).find("checksum mismatch") != std::string::npos);
    }
}

TEST_CASE("every truncation of a small file is a clean error") {
    const auto good = nn::serialize({{"w", tg::ones({2, 2})}, {"b", tg::zeros({3}, {.dtype = tg::kFloat64})}});
    for (std::size_t n = 0; n < good.size(); ++n) {
        const std::vector<uint8_t> cut(good.begin(), good.begin() + n);
        const std::string msg = error_of(cut);
        CHECK_MESSAGE(msg.rfind("checkpoint test.ckpt: ", 0) == 0, "cut at ", n, ": ", msg);
    }
    auto padded = good;
    padded.push_back(0);
    CHECK(error_of(padded).find("padded") != std::string::npos);
}

TEST_CASE("foreign files, other versions and lying headers are refused") {
    CHECK(error_of({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0}).find("not a tapegrad checkpoint") != std::string::npos);
    CHECK(error_of({}).find("not a tapegrad checkpoint") != std::string::npos);
    auto good = nn::serialize({{"w", tg::ones({2})}});
    auto v2 = good;
    v2[8] = 2;
    CHECK(error_of(v2).find("unsupported version 2") != std::string::npos);
    // A payload with a valid checksum whose entries lie about their sizes: rebuild the header
    // around hand-made payloads.
    auto with_payload = [&](const std::vector<uint8_t>& payload, uint32_t count) {
        nn::NamedTensors none;
        auto bytes = nn::serialize(none);  // a valid header for an empty payload
        bytes[12] = static_cast<uint8_t>(count);
        const uint64_t size = payload.size();
        std::memcpy(bytes.data() + 16, &size, 8);
        const uint32_t crc = static_cast<uint32_t>(::crc32(::crc32(0, nullptr, 0), payload.data(), payload.size()));
        std::memcpy(bytes.data() + 24, &crc, 4);
        bytes.insert(bytes.end(), payload.begin(), payload.end());
        return bytes;
    };
    // name length 1, "w", float32, 2 dims of 2^40 each: far more than the file holds
    std::vector<uint8_t> huge = {1, 0, 0, 0, 'w', 0, 2};
    for (int d = 0; d < 2; ++d)
        for (int k = 0; k < 8; ++k) huge.push_back(k == 5 ? 1 : 0);
    CHECK(error_of(with_payload(huge, 1)).find("more elements than the file holds") != std::string::npos);
    std::vector<uint8_t> bad_dtype = {1, 0, 0, 0, 'w', 9, 0};
    CHECK(error_of(with_payload(bad_dtype, 1)).find("unknown dtype") != std::string::npos);
    std::vector<uint8_t> long_name = {0xff, 0xff, 0xff, 0x7f};
    CHECK(error_of(with_payload(long_name, 1)).find("longer than 4096") != std::string::npos);
    std::vector<uint8_t> many_dims = {1, 0, 0, 0, 'w', 0, 200};
    CHECK(error_of(with_payload(many_dims, 1)).find("dimensions") != std::string::npos);
    std::vector<uint8_t> scalar = {1, 0, 0, 0, 'w', 0, 0, 0, 0, 0x80, 0x3f};
    CHECK(error_of(with_payload(scalar, 1)) == "no error");
    CHECK(error_of(with_payload(scalar, 2)).find("truncated") != std::string::npos);
    auto twice = scalar;
    twice.insert(twice.end(), scalar.begin(), scalar.end());
    CHECK(error_of(with_payload(twice, 2)).find("appears twice") != std::string::npos);
    CHECK(error_of(with_payload(twice, 1)).find("unexpected bytes") != std::string::npos);

    const std::string path = temp_path("missing.ckpt");
    std::filesystem::remove(path);
    CHECK_THROWS_WITH_AS(nn::load(path), doctest::Contains("cannot open"), std::runtime_error);
}
