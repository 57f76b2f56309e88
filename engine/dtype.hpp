#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tapegrad {

// float32 is the training type; float64 exists so that gradients can be checked by finite
// differences. Every op accepts both.
enum class DType : uint8_t { Float32, Float64 };
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;

inline std::size_t element_size(DType t) { return t == DType::Float32 ? 4 : 8; }
inline const char* dtype_name(DType t) { return t == DType::Float32 ? "float32" : "float64"; }

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::Float32; }
template <>
constexpr DType dtype_of<double>() { return DType::Float64; }

// Calls fn.template operator()<T>() with T the C++ type of `t`:
//   dispatch(x.dtype(), [&]<class T>() { kernel<T>(...); });
template <class Fn>
decltype(auto) dispatch(DType t, Fn&& fn) {
    if (t == DType::Float32) return fn.template operator()<float>();
    return fn.template operator()<double>();
}

}  // namespace tapegrad
