#include "engine/graph.hpp"

#include <cstdio>
#include <unordered_map>

#include "engine/autograd.hpp"

namespace tapegrad {
namespace {

// A DOT string literal: quotes and backslashes escaped, line breaks as \n.
std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

std::string bytes_text(std::size_t bytes) {
    char buf[32];
    if (bytes < 1024) std::snprintf(buf, sizeof buf, "%zu B", bytes);
    else if (bytes < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

std::string tensor_text(const SavedTensorInfo& s) {
    return to_string(s.shape) + " " + dtype_name(s.dtype) + " " + bytes_text(s.bytes);
}

std::string node_label(const Node& node) {
    const NodeInfo& info = node.info();
    std::string label = node.type_name() + " (" + node.name() + ")\n" + to_string(info.output_shape) + " " + dtype_name(info.output_dtype);
    if (!info.origin.scope.empty()) label += "\nscope " + info.origin.scope;
    if (node.released()) return label + "\n(saved tensors freed)";
    // An op definition that lists its saved state names it, tensors and other values; otherwise
    // (a closure) the saved tensors are listed unnamed.
    const std::shared_ptr<const SavedState> state = info.saved_state.lock();
    const std::vector<SavedField> fields = state ? state->fields() : std::vector<SavedField>{};
    for (const SavedField& field : fields)
        label += "\nsaved " + field.name + ": " + (field.tensor ? tensor_text(*field.tensor) : field.value);
    if (!fields.empty()) return label;
    for (const SavedTensorInfo& s : info.saved) label += "\nsaved " + tensor_text(s);
    return label;
}

}  // namespace

std::string to_dot(const Tensor& output, const std::vector<std::pair<std::string, Tensor>>& names) {
    if (!output.defined()) throw std::invalid_argument("to_dot: the tensor is undefined");
    std::unordered_map<const TensorImpl*, std::string> leaf_names;
    for (const auto& [name, t] : names)
        if (t.defined()) leaf_names.emplace(t.impl(), name);

    std::string dot = "digraph tape {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
    std::unordered_map<const Node*, std::string> node_ids;
    std::unordered_map<const TensorImpl*, std::string> leaf_ids;
    auto leaf_id = [&](const std::shared_ptr<TensorImpl>& leaf) {
        auto [it, fresh] = leaf_ids.emplace(leaf.get(), "leaf" + std::to_string(leaf_ids.size()));
        if (fresh) {
            const Tensor t(leaf);
            auto named = leaf_names.find(leaf.get());
            const std::string label = (named != leaf_names.end() ? named->second : std::string("leaf")) + "\n" + describe(t);
            dot += "  " + it->second + " [label=" + quoted(label) + ", shape=ellipse, style=filled, fillcolor=\"#cfe2f3\"];\n";
        }
        return it->second;
    };

    // Iterative walk: a deep chain must not overflow the stack.
    std::vector<Node*> stack;
    auto visit = [&](const std::shared_ptr<Node>& node) {
        auto [it, fresh] = node_ids.emplace(node.get(), "op" + std::to_string(node_ids.size()));
        if (fresh) stack.push_back(node.get());
        return it->second;
    };
    std::string root_id;
    if (output.grad_fn()) root_id = visit(output.grad_fn());
    else if (output.requires_grad()) root_id = leaf_id(output.impl_ptr());
    while (!stack.empty()) {
        Node* node = stack.back();
        stack.pop_back();
        const std::string id = node_ids.at(node);
        dot += "  " + id + " [label=" + quoted(node_label(*node)) + ", shape=box, style=filled, fillcolor=\"#f4f4f4\"];\n";
        for (const Edge& e : node->edges()) {
            if (e.node) dot += "  " + visit(e.node) + " -> " + id + ";\n";
            else if (e.leaf) dot += "  " + leaf_id(e.leaf) + " -> " + id + ";\n";
        }
    }
    dot += "  output [label=" + quoted("output\n" + describe(output)) + ", shape=box, style=\"rounded,filled\", fillcolor=\"#d9ead3\"];\n";
    if (!root_id.empty()) dot += "  " + root_id + " -> output;\n";
    return dot + "}\n";
}

}  // namespace tapegrad
