#include "nn/device.hpp"

#include <ostream>
#include <stdexcept>

namespace tapegrad {

Device::Device(DeviceType type, int64_t index) : type_(type), index_(index) {
    if (index < -1) throw std::invalid_argument("Device: the index must be -1 (none) or a device number, got " + std::to_string(index));
}

Device::Device(const std::string& spec) : Device(kCPU) {
    const std::size_t colon = spec.find(':');
    const std::string type = spec.substr(0, colon);
    if (type == "cuda")
        type_ = kCUDA;
    else if (type != "cpu")
        throw std::invalid_argument("Device: expected \"cpu\", \"cuda\" or \"cuda:<index>\", got \"" + spec + "\"");
    if (colon == std::string::npos) return;
    const std::string digits = spec.substr(colon + 1);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
        throw std::invalid_argument("Device: expected a device number after the colon, got \"" + spec + "\"");
    index_ = std::stoll(digits);
}

std::string Device::str() const {
    std::string out = is_cpu() ? "cpu" : "cuda";
    if (has_index()) out += ':' + std::to_string(index_);
    return out;
}

void Device::check_cpu(const char* who) const {
    if (!is_cpu())
        throw std::invalid_argument(std::string(who) + ": tapegrad runs on the CPU only, so device " + str() +
                                    " cannot be used (cuda::is_available() is false); pass Device(kCPU)");
}

Device::operator TensorOptions() const {
    check_cpu("tensor factory");
    return {};
}

std::ostream& operator<<(std::ostream& out, const Device& device) { return out << device.str(); }

Tensor Tensor::to(const Device& device) const {
    device.check_cpu("Tensor::to");
    return *this;
}

Tensor Tensor::to(const Device& device, DType dtype) const {
    device.check_cpu("Tensor::to");
    return to(dtype);
}

Device Tensor::device() const { return Device(kCPU); }

Tensor Tensor::cuda() const {
    Device(kCUDA).check_cpu("Tensor::cuda");
    return *this;
}

}  // namespace tapegrad
