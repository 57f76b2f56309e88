#include "distributed/flat_buffer.hpp"

#include "engine/tensor_math.hpp"

namespace tapegrad::distributed {

FlatBuffer::FlatBuffer(const std::vector<Shape>& shapes, DType dtype) : shapes_(shapes) {
    int64_t total = 0;
    for (const Shape& s : shapes_) {
        offsets_.push_back(total);
        total += numel_of(s);
    }
    flat_ = empty({total}, {.dtype = dtype});
}

Tensor FlatBuffer::slot(std::size_t i) const {
    return as_strided(flat_, shapes_.at(i), contiguous_strides(shapes_[i]), offsets_[i]);
}

void FlatBuffer::pack(std::size_t i, const Tensor& t) const {
    if (t.defined()) copy_into(slot(i), t);
    else fill_tensor(slot(i), 0.0);
}

void FlatBuffer::unpack(std::size_t i, const Tensor& t) const { copy_into(t, slot(i)); }

std::vector<double> FlatBuffer::read(std::size_t i) const { return slot(i).to(kFloat64).to_vector<double>(); }

void FlatBuffer::write(std::size_t i, const std::vector<double>& values) const {
    copy_into(slot(i), from_vector(values, shapes_.at(i)).to(flat_.dtype()));
}

void FlatBuffer::scale(double factor) const {
    const int64_t n = numel();
    if (flat_.dtype() == kFloat32) {
        float* p = flat_.data<float>();
        const auto f = static_cast<float>(factor);
        for (int64_t k = 0; k < n; ++k) p[k] *= f;
    } else {
        double* p = flat_.data<double>();
        for (int64_t k = 0; k < n; ++k) p[k] *= factor;
    }
}

}  // namespace tapegrad::distributed
