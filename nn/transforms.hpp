#pragma once
// Data augmentation and normalisation on a batch of images [B,C,H,W] (float32 or float64), as
// torchvision's transforms apply them to each image: RandomCrop(size, padding),
// RandomHorizontalFlip(p), Normalize(mean, std). A random transform draws from its own seeded
// generator, one draw per image, so a run is reproducible. They work outside autograd (data
// preparation) and return new tensors.
//
//   nn::DataLoader loader(train, {.batch_size = 64, .transform = nn::compose({
//       nn::random_crop(28, 4, /*seed=*/1), nn::random_horizontal_flip(0.5, 2), nn::normalize({0.286}, {0.353})})});
#include <functional>
#include <vector>

#include "engine/tensor.hpp"
#include "ops/conv.hpp"

namespace tapegrad::nn {

using Transform = std::function<Tensor(const Tensor&)>;

// Zero-pads each image by `padding` on every side, then crops `size` at a random position.
Transform random_crop(Pair size, int64_t padding, uint64_t seed);
// Mirrors each image left-right with probability p.
Transform random_horizontal_flip(double p, uint64_t seed);
// (x - mean[c]) / std[c] per channel; one value each, or one per channel.
Transform normalize(std::vector<double> mean, std::vector<double> stddev);
// Applies the transforms in order.
Transform compose(std::vector<Transform> transforms);

}  // namespace tapegrad::nn
