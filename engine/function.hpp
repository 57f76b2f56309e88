#pragma once
// User-defined ops, in the style of PyTorch's autograd::Function:
//
//   struct Cube : tg::Function<Cube> {
//       static tg::Tensor forward(tg::FunctionCtx& ctx, const tg::Tensor& x) {
//           ctx.save_for_backward({x});
//           return x * x * x;
//       }
//       static std::vector<tg::Tensor> backward(tg::FunctionCtx& ctx, const tg::Tensor& grad_out) {
//           const tg::Tensor& x = ctx.saved()[0];
//           return {grad_out * 3.0 * x * x};   // one gradient per Tensor argument of forward
//       }
//   };
//   tg::Tensor y = Cube::apply(x);
//
// forward runs with grad mode off; its Tensor arguments become the node's inputs, in order.
// backward runs with grad mode off too (on under create_graph, when what it computes with tapegrad
// ops is recorded), and returns one gradient per input (an undefined Tensor for none);
// needs_input_grad says which are wanted.
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/autograd.hpp"

namespace tapegrad {

class FunctionCtx {
public:
    // Saved tensors are kept as SavedTensor: detached aliases that remember their versions
    // (saved() refuses them once an in-place write changed them) and, for a backward that is
    // being recorded (create_graph), their history, so a backward written with tapegrad ops is
    // differentiable again. Saving the output never makes a cycle.
    void save_for_backward(const std::vector<Tensor>& tensors) {
        saved_.clear();
        for (const Tensor& t : tensors) saved_.push_back(t.defined() ? SavedTensor(t) : SavedTensor());
    }
    const std::vector<Tensor>& saved() const {
        unpacked_.clear();
        for (const SavedTensor& s : saved_) unpacked_.push_back(s.unpack());
        return unpacked_;
    }
    // Non-tensor values a backward needs (a scale, an axis).
    std::map<std::string, double> saved_data;
    // Set before backward runs: which inputs need a gradient.
    GradMask needs_input_grad;

private:
    std::vector<SavedTensor> saved_;
    mutable std::vector<Tensor> unpacked_;
};

template <class Op>
struct Function {
    template <class... Args>
    static Tensor apply(Args&&... args) {
        std::vector<Tensor> inputs;
        (collect(inputs, args), ...);
        auto ctx = std::make_shared<FunctionCtx>();
        Tensor out;
        {
            NoGradGuard no_grad;
            out = Op::forward(*ctx, std::forward<Args>(args)...);
        }
        if (!out.defined()) throw std::invalid_argument(op_name() + ": forward returned an undefined tensor");
        const std::size_t n_inputs = inputs.size();
        return record(op_name(), out.detach(), inputs, [ctx, n_inputs](const Tensor& g, const GradMask& needs) {
            ctx->needs_input_grad = needs;
            std::vector<Tensor> grads = Op::backward(*ctx, g);
            if (grads.size() != n_inputs)
                throw std::invalid_argument(op_name() + ": backward returned " + std::to_string(grads.size()) +
                                            " gradients, but forward took " + std::to_string(n_inputs) +
                                            " tensors; return one per tensor argument (undefined for none)");
            return grads;
        });
    }

private:
    static std::string op_name() {
        if constexpr (requires { Op::name; }) return std::string(Op::name);
        else return "custom_function";
    }
    template <class A>
    static void collect(std::vector<Tensor>& inputs, const A& a) {
        if constexpr (std::is_same_v<std::decay_t<A>, Tensor>) inputs.push_back(a);
    }
};

}  // namespace tapegrad
