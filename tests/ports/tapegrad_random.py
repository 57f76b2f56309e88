"""tapegrad's random numbers in pure Python, bit for bit (engine/generator.cpp): xoshiro256**
seeded by splitmix64, uniform from the top 53 bits, normal by Box-Muller, and the layers'
PyTorch-style initialisation (nn/init.cpp, nn/layers.cpp). Values are doubles; tapegrad rounds each
to the tensor's dtype (float32 by default) as it stores it."""
import math

MASK = (1 << 64) - 1
DEFAULT_SEED = 67280421310721  # PyTorch's default seed, tapegrad's default generator's


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Generator:
    def __init__(self, seed=DEFAULT_SEED):
        x = seed & MASK
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    def next_u64(self):
        s = self.s
        result = (_rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next_u64() >> 11) * 2.0**-53

    def normal(self):
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def randn(self, count):
        """tg::randn of `count` elements, row-major."""
        return [self.normal() for _ in range(count)]

    def uniform_between(self, count, low, high):
        """init::uniform_ / tg::uniform: low + (high - low) * u."""
        return [low + (high - low) * self.uniform() for _ in range(count)]

    def linear_init(self, in_features, out_features):
        """nn::Linear's weight [out, in] (kaiming_uniform, a = sqrt(5)) then bias [out]."""
        a = math.sqrt(5.0)
        bound = math.sqrt(2.0 / (1.0 + a * a)) * math.sqrt(3.0 / in_features)
        weight = self.uniform_between(out_features * in_features, -bound, bound)
        bias_bound = 1.0 / math.sqrt(float(in_features))
        bias = self.uniform_between(out_features, -bias_bound, bias_bound)
        return weight, bias
