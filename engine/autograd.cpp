// backward() and grad(): the roots of a pass, from the outputs and their grad_outputs, handed to
// a GraphTask (graph_task.cpp), as PyTorch's torch/csrc/autograd/autograd.cpp does.
#include "engine/autograd.hpp"

#include <atomic>
#include <iostream>

#include "engine/graph_task.hpp"

namespace tapegrad {

namespace {

std::vector<detail::Root> make_roots(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                                     const char* api) {
    if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
        throw std::invalid_argument(std::string(api) + ": got " + std::to_string(grad_outputs.size()) +
                                    " grad_outputs for " + std::to_string(outputs.size()) + " outputs");
    std::vector<detail::Root> roots;
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        const Tensor& out = outputs[i];
        if (!out.defined()) throw std::invalid_argument(std::string(api) + ": output " + std::to_string(i) + " is undefined");
        if (!out.requires_grad())
            throw std::invalid_argument(std::string(api) + ": output " + std::to_string(i) + " " + describe(out) +
                                        " does not require grad and has no grad_fn; make sure a parameter it depends "
                                        "on has requires_grad set and that it was not computed under NoGradGuard");
        Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
        if (!g.defined()) {
            if (out.numel() != 1)
                throw std::invalid_argument(std::string(api) + ": grad can be implicitly created only for scalar outputs, "
                                            "but output " + std::to_string(i) + " has shape " + to_string(out.shape()) +
                                            "; pass a grad_output of that shape");
            g = ones_like(out);
        } else if (g.shape() != out.shape() || g.dtype() != out.dtype()) {
            throw std::invalid_argument(std::string(api) + ": grad_output " + describe(g) + " does not match output " +
                                        std::to_string(i) + " " + describe(out));
        }
        Edge e;
        if (out.grad_fn()) e.node = out.grad_fn();
        else e.leaf = out.impl_ptr();
        e.shape = out.shape();
        e.dtype = out.dtype();
        roots.push_back({std::move(e), g});
    }
    return roots;
}

// PyTorch's warning, once per process: a .grad() recorded by backward(create_graph) holds the
// graph that made it, which holds the leaf, which holds its .grad().
void warn_create_graph_cycle() {
    static std::atomic<bool> warned{false};
    if (warned.exchange(true)) return;
    std::cerr << "tapegrad warning: Using backward() with create_graph=true will create a reference cycle between the "
                 "parameter and its gradient which can cause a memory leak. We recommend using tg::grad() when "
                 "creating the graph to avoid this. If you have to use this function, make sure to reset the .grad() "
                 "of your parameters (zero_grad()) after use to break the cycle and avoid the leak.\n";
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph,
              bool create_graph) {
    const auto roots = make_roots(outputs, grad_outputs, "backward");
    if (create_graph) warn_create_graph_cycle();
    detail::GraphTask task({.keep_graph = retain_graph.value_or(create_graph), .create_graph = create_graph});
    task.execute(roots);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph, bool create_graph,
                         bool allow_unused) {
    const auto roots = make_roots(outputs, grad_outputs, "grad");
    detail::GraphTask task(
        {.keep_graph = retain_graph.value_or(create_graph), .create_graph = create_graph, .accumulate_leaves = false});
    // An input named twice gets the same gradient twice: the pass computes it once, for the first.
    std::vector<std::size_t> first_of(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].defined() || !inputs[i].requires_grad())
            throw std::invalid_argument("grad: input " + std::to_string(i) + " " + describe(inputs[i]) +
                                        " does not require grad, so no gradient can be computed for it");
        first_of[i] = task.capture(inputs[i], i);
    }
    std::vector<Tensor> gradients = task.execute(roots, inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (first_of[i] != i) gradients[i] = gradients[first_of[i]];
        else if (!gradients[i].defined() && !allow_unused)
            throw std::invalid_argument("grad: input " + std::to_string(i) + " " + describe(inputs[i]) +
                                        " was not used to compute the outputs; pass allow_unused=true if that is expected");
    }
    return gradients;
}

}  // namespace tapegrad
