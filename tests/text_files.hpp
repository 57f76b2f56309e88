#pragma once
// What the tests of written files ask of them: their bytes, and how often a piece of text occurs.
#include <fstream>
#include <sstream>
#include <string>

namespace tapegrad::testing {

inline std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

inline int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace tapegrad::testing
