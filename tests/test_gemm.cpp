// The GEMM seam's two libraries, each called directly whatever the processor's table picks: every
// transpose combination with padded row strides against a float64 loop, beta handling, stride
// errors, and deterministic mode's promise (the same bits at 1 and 2 threads, and at one thread
// the same bits as without it).
#include <doctest/doctest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/threads.hpp"
#include "ops/kernels/cpu_isa.hpp"
#include "ops/kernels/gemm.hpp"
#include "ops/kernels/gemm_backend.hpp"

namespace tg = tapegrad;
using tg::kernels::GemmBackend;

namespace {

struct Product {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    std::vector<float> A, B;
};

// Operands stored as the flags say (A is [K,M] when transposed), each row padded by 3 floats.
Product make_product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, unsigned seed) {
    Product p{ta, tb, M, N, K, (ta ? M : K) + 3, (tb ? K : N) + 3, N + 3, {}, {}};
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    p.A.resize((ta ? K : M) * p.lda);
    p.B.resize((tb ? N : K) * p.ldb);
    for (float& v : p.A) v = u(gen);
    for (float& v : p.B) v = u(gen);
    return p;
}

double exact(const Product& p, int64_t i, int64_t j) {
    double acc = 0;
    for (int64_t k = 0; k < p.K; ++k)
        acc += static_cast<double>(p.ta ? p.A[k * p.lda + i] : p.A[i * p.lda + k]) *
               static_cast<double>(p.tb ? p.B[j * p.ldb + k] : p.B[k * p.ldb + j]);
    return acc;
}

std::vector<GemmBackend> backends() {
    std::vector<GemmBackend> out{GemmBackend::OneDnn};
    if (tg::kernels::have_openblas()) out.push_back(GemmBackend::OpenBlas);
    return out;
}

std::vector<uint32_t> bits(const std::vector<float>& v) {
    std::vector<uint32_t> out;
    for (float x : v) out.push_back(std::bit_cast<uint32_t>(x));
    return out;
}

}  // namespace

TEST_CASE("gemm backends: every transpose combination, padded strides, against float64") {
    // Both libraries on a mid-sized and a tiny product, whichever kernels::gemm would pick.
    for (GemmBackend backend : backends())
        for (auto [M, N, K] : {std::array<int64_t, 3>{400, 390, 385}, std::array<int64_t, 3>{7, 5, 3}})
            for (bool ta : {false, true})
                for (bool tb : {false, true}) {
                    CAPTURE(tg::kernels::gemm_backend_name(backend));
                    CAPTURE(M);
                    CAPTURE(ta);
                    CAPTURE(tb);
                    const Product p = make_product(ta, tb, M, N, K, 1);
                    // beta == 0 must ignore C's NaNs; the padding between rows must stay untouched.
                    std::vector<float> C(M * p.ldc, std::numeric_limits<float>::quiet_NaN());
                    tg::kernels::sgemm_on(backend, ta, tb, M, N, K, 2.0f, p.A.data(), p.lda, p.B.data(), p.ldb, 0.0f,
                                          C.data(), p.ldc);
                    double worst = 0;
                    for (int64_t i = 0; i < M; ++i) {
                        for (int64_t j = 0; j < N; ++j)
                            worst = std::max(worst, std::abs(C[i * p.ldc + j] - 2 * exact(p, i, j)) / std::sqrt(double(K)));
                        CHECK(std::isnan(C[i * p.ldc + N]));
                    }
                    CHECK(worst < 1e-5);
                    // beta == 1 adds to what is there.
                    std::vector<float> before(C.begin(), C.end());
                    tg::kernels::sgemm_on(backend, ta, tb, M, N, K, 1.0f, p.A.data(), p.lda, p.B.data(), p.ldb, 1.0f,
                                          C.data(), p.ldc);
                    CHECK(std::abs(C[0] - (before[0] + exact(p, 0, 0))) < 1e-4);
                }
}

TEST_CASE("gemm backends: strides too small are an error that names the sizes") {
    std::vector<float> A(64), B(64), C(64);
    for (GemmBackend backend : backends()) {
        CHECK_THROWS_AS(tg::kernels::sgemm_on(backend, false, false, 4, 4, 4, 1.0f, A.data(), 3, B.data(), 4, 0.0f,
                                              C.data(), 4),
                        std::invalid_argument);
        CHECK_THROWS_WITH(tg::kernels::sgemm_on(backend, false, false, 4, 4, 4, 1.0f, A.data(), 4, B.data(), 4, 0.0f,
                                                C.data(), 2),
                          doctest::Contains("M=4, N=4, K=4"));
    }
}

TEST_CASE("gemm: the table's choice is fixed for a shape, and oneDNN takes what OpenBLAS cannot") {
    const GemmBackend big = tg::kernels::gemm_backend(false, false, 512, 512, 512);
    CHECK(tg::kernels::gemm_backend(false, false, 512, 512, 512) == big);
    if (!tg::kernels::have_openblas()) CHECK(big == GemmBackend::OneDnn);
    MESSAGE("oneDNN ISA ", tg::kernels::onednn_isa_name(), "; [512,512]x[512,512] -> ", std::string(tg::kernels::gemm_backend_name(big)),
            "; [64,128]x[4096,128]^T -> ",
            std::string(tg::kernels::gemm_backend_name(tg::kernels::gemm_backend(false, true, 64, 4096, 128))));
}

TEST_CASE("gemm: deterministic mode gives the same bits at 1 and 2 threads, and changes nothing at 1") {
    // Skinny products with a long reduction are where a library splits K between threads; A^T B
    // (a weight gradient) and a large square product go to OpenBLAS on AVX2 processors.
    const int before = tg::get_num_threads();
    struct Shape3 {
        bool ta;
        int64_t M, N, K;
    };
    for (auto [ta, M, N, K] : {Shape3{false, 64, 128, 4096}, Shape3{true, 4096, 128, 64}, Shape3{false, 520, 515, 512}}) {
        CAPTURE(M);
        const Product p = make_product(ta, false, M, N, K, 2);
        auto run = [&](int threads) {
            tg::set_num_threads(threads);
            std::vector<float> C(M * p.ldc, 0.0f);
            tg::kernels::gemm(tg::Kernels::Fast, ta, false, M, N, K, 1.0f, p.A.data(), p.lda, p.B.data(), p.ldb, 0.0f, C.data(), p.ldc);
            return bits(C);
        };
        const auto plain_one = run(1);
        tg::set_deterministic(true);
        const auto one = run(1), two = run(2);
        tg::set_deterministic(false);
        CHECK(one == two);
        CHECK(one == plain_one);
    }
    tg::set_num_threads(before);
}
