#pragma once
// tapegrad::SourceLocation: std::source_location where the standard library has it. clang 14 with
// libstdc++ 12 (the fuzz build) has no __builtin_source_location, so <source_location> is empty
// there; the same interface is then built from __builtin_FILE / __builtin_LINE /
// __builtin_FUNCTION, which every compiler of this project supports.
#include <cstdint>
#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
namespace tapegrad {
using SourceLocation = std::source_location;
}  // namespace tapegrad
#else
namespace tapegrad {
class SourceLocation {
public:
    static constexpr SourceLocation current(const char* file = __builtin_FILE(), std::uint_least32_t line = __builtin_LINE(),
                                            const char* function = __builtin_FUNCTION()) noexcept {
        SourceLocation s;
        s.file_ = file;
        s.line_ = line;
        s.function_ = function;
        return s;
    }
    constexpr const char* file_name() const noexcept { return file_; }
    constexpr std::uint_least32_t line() const noexcept { return line_; }
    constexpr std::uint_least32_t column() const noexcept { return 0; }
    constexpr const char* function_name() const noexcept { return function_; }

private:
    const char* file_ = "";
    std::uint_least32_t line_ = 0;
    const char* function_ = "";
};
}  // namespace tapegrad
#endif
