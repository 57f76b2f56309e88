#pragma once
// Several tensors of one dtype laid end to end in one dense buffer, so that one MPI call moves
// them all (a gradient bucket, the buffers broadcast at each forward). Internal to distributed/.
#include <cstdint>
#include <vector>

#include "engine/tensor.hpp"

namespace tapegrad::distributed {

class FlatBuffer {
public:
    FlatBuffer() = default;
    // Room for tensors of these shapes, one after the other, in `dtype`.
    FlatBuffer(const std::vector<Shape>& shapes, DType dtype);

    const Tensor& flat() const { return flat_; }
    int64_t numel() const { return flat_.defined() ? flat_.numel() : 0; }
    std::size_t size() const { return offsets_.size(); }
    // The i-th slot, a dense row-major view of the buffer.
    Tensor slot(std::size_t i) const;
    // slot(i) = t (any strides); an undefined t writes zeros.
    void pack(std::size_t i, const Tensor& t) const;
    // t = slot(i) (any strides).
    void unpack(std::size_t i, const Tensor& t) const;
    // Slot i's elements, in order (a small slot: the reducer's flags).
    std::vector<double> read(std::size_t i) const;
    void write(std::size_t i, const std::vector<double>& values) const;
    // Multiplies every element by `factor` (averaging a sum over ranks).
    void scale(double factor) const;

private:
    Tensor flat_;
    std::vector<Shape> shapes_;
    std::vector<int64_t> offsets_;
};

}  // namespace tapegrad::distributed
