#include "tests/registry/op_registry.hpp"

namespace tapegrad::testing {

std::vector<OpCase>& op_registry() {
    static std::vector<OpCase> cases;
    return cases;
}

RegisterOps::RegisterOps(std::vector<OpCase> cases) {
    for (auto& c : cases) op_registry().push_back(std::move(c));
}

}  // namespace tapegrad::testing
