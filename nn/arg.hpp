#pragma once
// One option: a private field, a chainable setter and a getter, as libtorch's TORCH_ARG.
#define TAPEGRAD_ARG(T, name)                   \
public:                                         \
    auto& name(const T& new_value) {            \
        name##_ = new_value;                    \
        return *this;                           \
    }                                           \
    const T& name() const noexcept { return name##_; } \
                                                \
private:                                        \
    T name##_
