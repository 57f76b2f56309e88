#pragma once
// The checkpoint file: named tensors in one versioned, little-endian binary file.
//
//   header   "TAPEGRAD" (8 bytes), version u32 (= 1), entry count u32, payload size u64,
//            crc32 of the payload u32 (zlib's)
//   payload  per entry: name length u32, name bytes, dtype u8 (0 float32, 1 float64, 2 int64, 3 int32), ndim u8,
//            dims i64 x ndim, the elements in row-major order
//
// Loading checks the magic, version, payload size and checksum before parsing, and every length
// against the bytes that remain before allocating, so a truncated, corrupted or foreign file gives
// a std::runtime_error that says what is wrong, never a crash. Writing refuses (std::invalid_argument,
// before any byte is written) what loading would refuse: names longer than 4096 bytes or given
// twice, undefined tensors. Errors start with the function's name and
// name the file: "load_checkpoint: checkpoint out/model.tgck: checksum mismatch ...",
// "nn::load: out is a directory, not a file", "nn::save: cannot write ...: <the system's reason>".
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/generator.hpp"
#include "nn/module.hpp"

namespace tapegrad::nn {

class Optimizer;

inline constexpr uint32_t kCheckpointVersion = 1;

std::vector<uint8_t> serialize(const NamedTensors& tensors);
// `source` names the buffer in error messages (a file name).
NamedTensors deserialize(const uint8_t* data, std::size_t size, const std::string& source = "buffer");
// All or nothing: writes a temporary file next to `path` and renames it over `path`, so that an
// interrupted or failed save leaves `path` as it was and no temporary behind.
void save(const NamedTensors& tensors, const std::string& path);
NamedTensors load(const std::string& path);

// A training checkpoint: the model's state_dict under "model.", the optimizer's state under
// "optimizer.", the number of finished epochs and, optionally, a generator's state (for resuming
// the data order). `epoch` must be in [0, 10^12), as load_checkpoint requires.
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer, int64_t epoch,
                     const Generator* generator = nullptr);
struct CheckpointInfo {
    int64_t epoch = 0;
    std::optional<Generator::State> generator;
};
// Loads into `model` (strict) and `optimizer` (when given), all or nothing: every part is checked
// before either changes, so an error leaves both as they were. Errors name the file.
CheckpointInfo load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer);

}  // namespace tapegrad::nn
