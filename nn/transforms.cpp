#include "nn/transforms.hpp"

#include <memory>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "engine/generator.hpp"

namespace tapegrad::nn {
namespace {

Tensor checked_batch(const char* what, const Tensor& x) {
    if (!x.defined() || x.dim() != 4)
        throw std::invalid_argument(std::string(what) + ": expects a batch of images [B,C,H,W], got " +
                                    (x.defined() ? describe(x) : std::string("an undefined tensor")));
    return x.contiguous();
}

}  // namespace

Transform random_crop(Pair size, int64_t padding) {
    if (size.h <= 0 || size.w <= 0 || padding < 0)
        throw std::invalid_argument("random_crop: size must be positive and padding not negative, got {" + std::to_string(size.h) +
                                    "," + std::to_string(size.w) + "} and " + std::to_string(padding));
    return [size, padding](const Tensor& in, Generator& gen) {
        const Tensor x = checked_batch("random_crop", in);
        const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
        if (H + 2 * padding < size.h || W + 2 * padding < size.w)
            throw std::invalid_argument("random_crop: the crop {" + std::to_string(size.h) + "," + std::to_string(size.w) +
                                        "} is larger than the padded image " + describe(x));
        Tensor out = zeros({B, C, size.h, size.w}, {.dtype = x.dtype()});
        const auto guard = gen.lock();
        dispatch(x.dtype(), [&]<class T>() {
            const T* src = x.data<T>();
            T* dst = out.data<T>();
            for (int64_t b = 0; b < B; ++b) {
                // The crop's top-left corner in padded coordinates, as torchvision draws it.
                const int64_t top = static_cast<int64_t>(gen.below(static_cast<uint64_t>(H + 2 * padding - size.h + 1))) - padding;
                const int64_t left = static_cast<int64_t>(gen.below(static_cast<uint64_t>(W + 2 * padding - size.w + 1))) - padding;
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t i = 0; i < size.h; ++i) {
                        const int64_t r = top + i;
                        if (r < 0 || r >= H) continue;  // padding: stays zero
                        for (int64_t j = 0; j < size.w; ++j) {
                            const int64_t col = left + j;
                            if (col >= 0 && col < W) dst[((b * C + c) * size.h + i) * size.w + j] = src[((b * C + c) * H + r) * W + col];
                        }
                    }
            }
        });
        return out;
    };
}

Transform random_horizontal_flip(double p) {
    if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("random_horizontal_flip: p must be in [0, 1], got " + std::to_string(p));
    return [p](const Tensor& in, Generator& gen) {
        const Tensor x = checked_batch("random_horizontal_flip", in);
        Tensor out = empty_like(x);
        const auto guard = gen.lock();
        const int64_t B = x.size(0), rows = x.size(1) * x.size(2), W = x.size(3);
        dispatch(x.dtype(), [&]<class T>() {
            const T* src = x.data<T>();
            T* dst = out.data<T>();
            for (int64_t b = 0; b < B; ++b) {
                const bool flip = gen.uniform() < p;
                for (int64_t r = 0; r < rows; ++r) {
                    const T* s = src + (b * rows + r) * W;
                    T* d = dst + (b * rows + r) * W;
                    for (int64_t j = 0; j < W; ++j) d[j] = s[flip ? W - 1 - j : j];
                }
            }
        });
        return out;
    };
}

Transform normalize(std::vector<double> mean, std::vector<double> stddev) {
    if (mean.empty() || mean.size() != stddev.size())
        throw std::invalid_argument("normalize: give as many means as standard deviations (one, or one per channel)");
    for (double s : stddev)
        if (!(s > 0)) throw std::invalid_argument("normalize: standard deviations must be positive, got " + std::to_string(s));
    return [mean, stddev](const Tensor& in, Generator&) {
        const Tensor x = checked_batch("normalize", in);
        const int64_t B = x.size(0), C = x.size(1), plane = x.size(2) * x.size(3);
        if (mean.size() != 1 && static_cast<int64_t>(mean.size()) != C)
            throw std::invalid_argument("normalize: " + std::to_string(mean.size()) + " means for " + std::to_string(C) +
                                        " channels (" + describe(x) + ")");
        Tensor out = empty_like(x);
        dispatch(x.dtype(), [&]<class T>() {
            const T* src = x.data<T>();
            T* dst = out.data<T>();
            for (int64_t b = 0; b < B; ++b)
                for (int64_t c = 0; c < C; ++c) {
                    const std::size_t k = mean.size() == 1 ? 0 : static_cast<std::size_t>(c);
                    const T m = static_cast<T>(mean[k]), inv = static_cast<T>(1.0 / stddev[k]);
                    const int64_t base = (b * C + c) * plane;
                    for (int64_t i = 0; i < plane; ++i) dst[base + i] = (src[base + i] - m) * inv;
                }
        });
        return out;
    };
}

Transform compose(std::vector<Transform> transforms) {
    return [transforms = std::move(transforms)](const Tensor& x, Generator& gen) {
        Tensor y = x;
        for (const Transform& t : transforms) y = t(y, gen);
        return y;
    };
}

}  // namespace tapegrad::nn
