#pragma once
// libtorch's devices, for programs that choose one: tapegrad runs on the CPU, so
// cuda::is_available() is false and a program written as
//
//     torch::Device device(torch::kCPU);
//     if (torch::cuda::is_available()) device = torch::Device(torch::kCUDA);
//     model->to(device);
//     auto noise = torch::randn({64, 100, 1, 1}, device);
//
// runs unchanged on the CPU. A CUDA device can be named, but using one (Module::to, a factory)
// throws std::invalid_argument saying that tapegrad has only the CPU. A tensor's device members
// (x.to(device), x.device(), x.cpu(), x.is_cuda()) are defined in nn/device.cpp.
#include <cstdint>
#include <iosfwd>
#include <string>

#include "engine/tensor.hpp"

namespace tapegrad {

enum class DeviceType : int8_t { CPU, CUDA };
inline constexpr DeviceType kCPU = DeviceType::CPU;
inline constexpr DeviceType kCUDA = DeviceType::CUDA;

class Device {
public:
    Device(DeviceType type, int64_t index = -1);  // NOLINT: implicit, as libtorch's Device(kCPU)
    // "cpu", "cuda", "cuda:1", as libtorch's; anything else throws std::invalid_argument.
    explicit Device(const std::string& spec);
    DeviceType type() const noexcept { return type_; }
    int64_t index() const noexcept { return index_; }
    bool has_index() const noexcept { return index_ >= 0; }
    bool is_cpu() const noexcept { return type_ == DeviceType::CPU; }
    bool is_cuda() const noexcept { return type_ == DeviceType::CUDA; }
    // "cpu", "cuda:0".
    std::string str() const;
    // Throws std::invalid_argument naming `who` unless this is the CPU.
    void check_cpu(const char* who) const;
    // A factory's options on this device (torch::zeros(n, device)): the defaults, on the CPU.
    operator TensorOptions() const;  // NOLINT: implicit, as libtorch's TensorOptions(device)

    friend bool operator==(const Device&, const Device&) = default;

private:
    DeviceType type_;
    int64_t index_;
};

// Prints str(), as libtorch's.
std::ostream& operator<<(std::ostream& out, const Device& device);

namespace cuda {
// No CUDA in tapegrad.
inline bool is_available() noexcept { return false; }
inline int64_t device_count() noexcept { return 0; }
}  // namespace cuda

}  // namespace tapegrad
