// Every registry row fed integer and bool tensors: each op either computes what it computes on the same
// values in float64 (in its own integer dtype, as PyTorch's relu and abs do, or promoted to
// float32, as PyTorch's exp and sqrt are), or refuses with an std::invalid_argument that names
// the op. Never a float result computed from integer bits, never an anonymous error.
#include <doctest/doctest.h>

#include <cmath>
#include <regex>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/tensor_math.hpp"
#include "ops/arithmetic.hpp"
#include "ops/compare.hpp"
#include "tests/registry/op_registry.hpp"

namespace tg = tapegrad;
using tg::Tensor;
using tg::testing::OpCase;

namespace {

// The row's float inputs as integers (x 3, truncated, so that they are not all 0 and -1), or as
// bools (x > 0, so that both values occur); integer inputs (labels, indices) stay as they are.
std::vector<Tensor> integer_inputs(const std::vector<Tensor>& in, tg::DType dtype) {
    std::vector<Tensor> out;
    for (const Tensor& t : in) {
        if (!t.defined() || !tg::is_floating_point(t.dtype())) {
            out.push_back(t);
            continue;
        }
        out.push_back(dtype == tg::kBool ? t.detach() > 0.0 : (t.detach() * 3.0).to(dtype));
    }
    return out;
}

std::vector<Tensor> as_float64(const std::vector<Tensor>& in) {
    std::vector<Tensor> out;
    for (const Tensor& t : in) out.push_back(t.defined() && !tg::is_floating_point(t.dtype()) ? t.to(tg::kFloat64) : t);
    return out;
}

}  // namespace

TEST_CASE("registry: integer and bool inputs are computed as PyTorch computes them, or refused by the op's name") {
    const std::regex names_an_op(R"(^[a-z][a-z0-9_]*(\(\))?: )");
    int computed = 0, refused = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        for (tg::DType dtype : {tg::kInt64, tg::kInt32, tg::kBool}) {
            const std::string where = c.name + " (" + tg::dtype_name(dtype) + " inputs)";
            INFO(where);
            tg::NoGradGuard no_grad;
            const auto in = integer_inputs(tg::testing::make_case_inputs(c, tg::kFloat64, 13), dtype);
            Tensor out;
            try {
                out = c.fn(in);
            } catch (const std::invalid_argument& e) {
                const std::string message = e.what();
                CHECK_MESSAGE(std::regex_search(message, names_an_op), "the error does not name the op: " << message);
                ++refused;
                continue;
            }
            ++computed;
            const Tensor expected = c.fn(as_float64(in));
            REQUIRE(out.shape() == expected.shape());
            if (out.dtype() == tg::kBool) {
                // PyTorch's bool results: or for a sum, and for a product, nonzero for any value.
                CHECK_MESSAGE(tg::allclose(out.to(tg::kFloat64), expected.to(tg::kBool).to(tg::kFloat64), 0, 0),
                              "a bool result differs from float64 read as bool");
            } else if (tg::is_floating_point(out.dtype())) {
                CHECK_MESSAGE(tg::allclose(out.to(tg::kFloat64), expected, 1e-5, 1e-5),
                              "differs from float64 by " << tg::max_abs_diff(out.to(tg::kFloat64), expected));
            } else {
                // An integer result is float64's truncated toward zero, 0 where that is not finite: integer pow
                // to a negative exponent is 0 but for bases ±1 (PyTorch's powi: 2^-1 and 0^-1 are 0).
                std::vector<double> truncated = expected.contiguous().to_vector<double>();
                for (double& v : truncated) v = std::isfinite(v) ? std::trunc(v) : 0.0;
                const Tensor as_integer = tg::from_vector(truncated, expected.shape(), {.dtype = tg::kFloat64});
                CHECK_MESSAGE(tg::allclose(out.to(tg::kFloat64), as_integer, 0, 0),
                              "an integer result differs from float64 by " << tg::max_abs_diff(out.to(tg::kFloat64), as_integer));
            }
        }
    }
    MESSAGE(computed << " rows computed on integers, " << refused << " refused");
}

TEST_CASE("registry: bfloat16 inputs are computed exactly (views, copies) or refused by the op's name") {
    const std::regex names_an_op(R"(^[a-z][a-z0-9_]*(\(\))?: )");
    int computed = 0, refused = 0;
    for (const OpCase& c : tg::testing::op_registry()) {
        INFO(c.name);
        tg::NoGradGuard no_grad;
        // float inputs rounded to bfloat16 values, once as bfloat16 tensors and once as float32
        std::vector<Tensor> as_f32, as_bf16;
        for (const Tensor& t : tg::testing::make_case_inputs(c, tg::kFloat32, 17)) {
            const bool floating = t.defined() && t.dtype() == tg::kFloat32;
            as_bf16.push_back(floating ? t.detach().to(tg::kBFloat16) : t);
            as_f32.push_back(floating ? as_bf16.back().to(tg::kFloat32) : t);
        }
        Tensor out;
        try {
            out = c.fn(as_bf16);
        } catch (const std::invalid_argument& e) {
            const std::string message = e.what();
            CHECK_MESSAGE(std::regex_search(message, names_an_op), "the error does not name the op: " << message);
            CHECK_MESSAGE(message.find("bfloat16") != std::string::npos, "the error does not say bfloat16: " << message);
            ++refused;
            continue;
        }
        ++computed;
        const Tensor expected = c.fn(as_f32);
        REQUIRE(out.shape() == expected.shape());
        CHECK(out.dtype() == (expected.dtype() == tg::kFloat32 ? tg::kBFloat16 : expected.dtype()));
        CHECK_MESSAGE(tg::allclose(out.to(tg::kFloat64), expected.to(tg::kFloat64), 0, 0), "differs from float32 on the same values");
    }
    MESSAGE(computed << " rows computed on bfloat16, " << refused << " refused");
}
