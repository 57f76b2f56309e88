#pragma once
// What the adversarial tests ask of an error: its message, and whether it names what it should.
#include <stdexcept>
#include <string>

namespace tapegrad::testing {

// Runs f and returns the message of the std::invalid_argument it throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace tapegrad::testing
