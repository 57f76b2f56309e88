#pragma once
// The safetensors file (Hugging Face's format, what PyTorch models are shared in): weights move to
// and from PyTorch by name, so that model.load_state_dict(load_safetensors(path)) loads a
// torchvision state_dict saved with safetensors.torch.save_file, and a file written by
// save_safetensors(path, model.state_dict()) loads in PyTorch with safetensors.torch.load_file.
//
//   u64 N (little-endian), N bytes of a JSON object, the data
//   {"__metadata__": {"key": "value", ...},                       optional, strings only
//    "conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [begin, end]}, ...}
//
// Offsets count from the first byte after the header. The tensors' data must tile the data
// section exactly: no byte outside a tensor, none in two. F32, F64, I64 and I32 load as
// float32, float64, int64 and int32; F16 and BF16 load widened to float32 (exactly); other dtypes
// are refused. Reading checks every length, offset, shape and name before allocating anything,
// so a truncated, corrupted or hostile file gives a std::runtime_error naming the file and the
// tensor, never a crash. Writing refuses (std::invalid_argument, before any byte is written) what
// reading would refuse, and replaces the file all or nothing.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace tapegrad::nn {

using SafetensorsMetadata = std::map<std::string, std::string>;

struct Safetensors {
    NamedTensors tensors;          // in the order of their data in the file
    SafetensorsMetadata metadata;  // "__metadata__", empty when absent
};

// The file's bytes; `source` names them in errors (a file name). The tensors own their memory.
Safetensors parse_safetensors(const uint8_t* data, std::size_t size, const std::string& source = "buffer");
std::vector<uint8_t> serialize_safetensors(const NamedTensors& tensors, const SafetensorsMetadata& metadata = {});

Safetensors read_safetensors(const std::string& path);
NamedTensors load_safetensors(const std::string& path);
// The tensor stored under `name`; a file without it is refused, naming the ones it has.
Tensor load_safetensors_tensor(const std::string& path, const std::string& name);

// Tensors are stored in the order given (a state_dict's), each dense and row-major whatever its strides.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const SafetensorsMetadata& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const SafetensorsMetadata& metadata = {});
void save_safetensors(const std::string& path, const std::string& name, const Tensor& tensor,
                      const SafetensorsMetadata& metadata = {});

}  // namespace tapegrad::nn
