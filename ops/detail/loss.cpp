#include "ops/detail/loss.hpp"

#include <stdexcept>

#include "engine/strided.hpp"

namespace tapegrad::detail {

void check_reduction(const char* op, Reduction reduction, bool takes_batchmean) {
    if (reduction == Reduction::BatchMean && !takes_batchmean)
        throw std::invalid_argument(std::string(op) + ": Reduction::BatchMean is kl_div's alone; use Mean, Sum or None");
}

void check_same_shape(const char* op, const Tensor& input, const Tensor& target) {
    if (input.shape() != target.shape())
        throw std::invalid_argument(std::string(op) + ": the target must have the input's shape, but input is " + describe(input) +
                                    " and target " + describe(target) + "; reshape or expand the target first");
}

void check_constant(const char* op, const char* what, const Tensor& constant, const Tensor& input, const Shape& shape) {
    if (!constant.defined()) return;
    const std::string shapes = " (" + std::string(what) + " " + describe(constant) + ", input " + describe(input) + ")";
    if (constant.dtype() != input.dtype())
        throw std::invalid_argument(std::string(op) + ": the " + what + " must have the input's dtype" + shapes +
                                    "; convert it with .to()");
    if (constant.requires_grad())
        throw std::invalid_argument(std::string(op) + ": the " + what + " requires grad, but the loss has no gradient for it " +
                                    "(as PyTorch)" + shapes + "; pass " + what + ".detach()");
    bool broadcasts = constant.dim() <= shape.size();
    for (std::size_t i = 0; broadcasts && i < constant.dim(); ++i) {
        const int64_t c = constant.shape()[constant.dim() - 1 - i];
        broadcasts = c == 1 || c == shape[shape.size() - 1 - i];
    }
    if (!broadcasts)
        throw std::invalid_argument(std::string(op) + ": the " + what + " must broadcast to the input's shape " + to_string(shape) +
                                    shapes);
}

Tensor broadcast_dense(const Tensor& c, const Shape& shape) {
    if (!c.defined()) return Tensor();
    const Tensor v = c.detach();
    return as_contiguous(as_strided(v, shape, broadcast_strides(v.shape(), v.strides(), shape)));
}

void check_floating(const char* op, const Tensor& x, const char* what) {
    if (!is_floating_point(x.dtype()))
        throw std::invalid_argument(std::string(op) + ": this op takes float32 or float64 tensors, got " + dtype_name(x.dtype()) +
                                    " (" + what + ", " + to_string(x.shape()) + "); convert with .to(tg::kFloat32)");
}

void check_classification(const char* op, const Tensor& x, const std::vector<int64_t>& labels, const char* what) {
    if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the " + what + " are undefined");
    check_floating(op, x, what);
    if (x.dim() != 2)
        throw std::invalid_argument(std::string(op) + ": expects " + what + " of shape [N,K], got " + to_string(x.shape()));
    const int64_t N = x.shape()[0], K = x.shape()[1];
    if (static_cast<int64_t>(labels.size()) != N)
        throw std::invalid_argument(std::string(op) + ": " + std::to_string(labels.size()) + " labels for " + what + " " +
                                    to_string(x.shape()) + "; need one per row (" + std::to_string(N) + ")");
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= K)
            throw std::invalid_argument(std::string(op) + ": label " + std::to_string(labels[i]) + " at index " +
                                        std::to_string(i) + " is out of range for " + std::to_string(K) +
                                        " classes (" + what + " " + to_string(x.shape()) + ")");
}

ClassTargets class_targets(const char* op, const Tensor& input, const Tensor& target, const Tensor& weight,
                           int64_t ignore_index) {
    const std::string shapes = " (input " + describe(input) + ", target " + describe(target) + ")";
    if (target.dtype() != kInt64 && target.dtype() != kInt32)
        throw std::invalid_argument(std::string(op) + ": the target must be an integer tensor (int64 or int32) of class indices" +
                                    shapes + "; convert it with .to(tg::kInt64)");
    if (input.dim() == 0) throw std::invalid_argument(std::string(op) + ": the input needs a class dimension" + shapes);
    ClassTargets c;
    c.class_dim = input.dim() == 1 ? 0 : 1;
    Shape expected = input.shape();
    expected.erase(static_cast<std::size_t>(c.class_dim));
    if (target.shape() != expected)
        throw std::invalid_argument(std::string(op) + ": the target must have the input's shape without the class dimension " +
                                    std::to_string(c.class_dim) + ", " + to_string(expected) + shapes);
    const int64_t K = input.size(c.class_dim);
    c.shape = {c.class_dim == 0 ? 1 : input.size(0), K, 1};
    for (std::size_t d = 2; d < input.dim(); ++d) c.shape.inner *= input.size(static_cast<int64_t>(d));
    if (weight.defined()) {
        check_constant(op, "weight", weight, input, {K});
        if (weight.dim() != 1 || weight.size(0) != K)
            throw std::invalid_argument(std::string(op) + ": the weight must be [K] = [" + std::to_string(K) +
                                        "], one per class, got " + describe(weight) + shapes);
    }
    c.labels = target.to_vector<int64_t>();
    for (std::size_t j = 0; j < c.labels.size(); ++j) {
        const int64_t label = c.labels[j];
        if (label == ignore_index) {
            c.any_ignored = true;
        } else if (label < 0 || label >= K) {
            const std::string where = target.dim() == 1 ? "row " + std::to_string(j) : "target element " + std::to_string(j) + " (row-major)";
            throw std::invalid_argument(std::string(op) + ": label " + std::to_string(label) + " at " + where + " is outside [0, " +
                                        std::to_string(K) + ") and is not ignore_index (" + std::to_string(ignore_index) + ")" + shapes);
        }
    }
    return c;
}

Shape along_classes(std::size_t ndim, int64_t class_dim, int64_t K) {
    Shape along;
    along.resize(ndim, 1);
    along[static_cast<std::size_t>(class_dim)] = K;
    return along;
}

}  // namespace tapegrad::detail
