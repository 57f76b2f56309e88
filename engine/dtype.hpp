#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/bfloat16.hpp"

namespace tapegrad {

// float32 is the training type; float64 exists so that gradients can be checked by finite
// differences; every differentiable op accepts both. int64 (and int32, where it saves memory)
// hold class labels and indices: they can be created, copied, converted with .to(), saved and
// read, but never require grad and are refused by the floating-point ops. bool (one byte per
// element) holds masks and the results of comparisons; it converts as PyTorch's: nonzero (NaN
// included) is true, true is 1. bfloat16 is a storage dtype: it is created, converted with .to(),
// copied, viewed, printed and read, and autocast (ops/autocast.hpp) computes in it, but arithmetic
// ops refuse bfloat16 tensors by name and autograd does not run on them.
enum class DType : uint8_t { Float32, Float64, Int64, Int32, Bool, BFloat16 };
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kBool = DType::Bool;
inline constexpr DType kBFloat16 = DType::BFloat16;

inline bool is_floating_point(DType t) { return t == DType::Float32 || t == DType::Float64 || t == DType::BFloat16; }
inline std::size_t element_size(DType t) {
    switch (t) {
        case DType::Float64:
        case DType::Int64: return 8;
        case DType::Float32:
        case DType::Int32: return 4;
        case DType::BFloat16: return 2;
        case DType::Bool: return 1;
    }
    return 8;
}
inline const char* dtype_name(DType t) {
    switch (t) {
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Int64: return "int64";
        case DType::Int32: return "int32";
        case DType::Bool: return "bool";
        case DType::BFloat16: return "bfloat16";
    }
    return "unknown";
}

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::Float32; }
template <>
constexpr DType dtype_of<double>() { return DType::Float64; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <>
constexpr DType dtype_of<int32_t>() { return DType::Int32; }
template <>
constexpr DType dtype_of<bool>() { return DType::Bool; }
template <>
constexpr DType dtype_of<BFloat16>() { return DType::BFloat16; }

// Calls fn.template operator()<T>() with T the C++ type of a floating-point `t`:
//   dispatch(x.dtype(), [&]<class T>() { kernel<T>(...); });
// An integer dtype is refused: arithmetic and autograd are for float32 and float64.
template <class Fn>
decltype(auto) dispatch(DType t, Fn&& fn) {
    if (t == DType::Float32) return fn.template operator()<float>();
    if (t == DType::Float64) return fn.template operator()<double>();
    throw std::invalid_argument(std::string("this op takes float32 or float64 tensors, got ") + dtype_name(t) +
                                "; convert with .to(tg::kFloat32)");
}

// dispatch over every dtype arithmetic runs in, integers and bool included. bfloat16 is refused:
// the ops that compute check their inputs first (ops/detail/op.hpp) and name themselves, so this is
// the last guard.
template <class Fn>
decltype(auto) dispatch_all(DType t, Fn&& fn) {
    switch (t) {
        case DType::Float64: return fn.template operator()<double>();
        case DType::Int64: return fn.template operator()<int64_t>();
        case DType::Int32: return fn.template operator()<int32_t>();
        case DType::Bool: return fn.template operator()<bool>();
        case DType::BFloat16:
            throw std::invalid_argument("this op does not take bfloat16 tensors; convert with .to(tg::kFloat32)");
        case DType::Float32: break;
    }
    return fn.template operator()<float>();
}

// dispatch over every dtype, bfloat16 included: for storage, copies, fills and element access.
template <class Fn>
decltype(auto) dispatch_storage(DType t, Fn&& fn) {
    if (t == DType::BFloat16) return fn.template operator()<BFloat16>();
    return dispatch_all(t, std::forward<Fn>(fn));
}

}  // namespace tapegrad
