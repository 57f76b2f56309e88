#pragma once
// Data augmentation and normalisation on a batch of images [B,C,H,W] (float32 or float64), as
// torchvision's transforms apply them to each image: RandomCrop(size, padding),
// RandomHorizontalFlip(p), Normalize(mean, std). A random transform draws from the generator it
// is called with, one draw per image: a DataLoader calls it with a generator of the batch's own,
// seeded from the loader's seed, so a run is reproducible whatever the number of workers. They
// work outside autograd (data preparation) and return new tensors.
//
//   nn::DataLoader loader(train, {.batch_size = 64, .seed = 1, .transform = nn::compose({
//       nn::random_crop(28, 4), nn::random_horizontal_flip(0.5), nn::normalize({0.286}, {0.353})})});
#include <functional>
#include <vector>

#include "engine/generator.hpp"
#include "engine/tensor.hpp"
#include "ops/conv.hpp"

namespace tapegrad::nn {

// transform(batch, gen): the batch transformed, random choices drawn from gen (under its lock).
using Transform = std::function<Tensor(const Tensor& batch, Generator& gen)>;

// Zero-pads each image by `padding` on every side, then crops `size` at a random position.
Transform random_crop(Pair size, int64_t padding = 0);
// Mirrors each image left-right with probability p.
Transform random_horizontal_flip(double p = 0.5);
// (x - mean[c]) / std[c] per channel; one value each, or one per channel.
Transform normalize(std::vector<double> mean, std::vector<double> stddev);
// Applies the transforms in order.
Transform compose(std::vector<Transform> transforms);

}  // namespace tapegrad::nn
