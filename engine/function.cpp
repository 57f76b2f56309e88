#include "engine/function.hpp"

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "ops/pad.hpp"
#include "ops/shape_ops.hpp"
#include "ops/view.hpp"

namespace tapegrad {

// ---------------------------------------------------------------- IValue

namespace {
struct IValueKind {
    const char* name;     // libtorch's tagKind()
    const char* article;  // "an Int"
    const char* reader;
};
// In the order of IValue::Value's alternatives.
constexpr IValueKind kIValueKinds[] = {
    {"None", "", ""},
    {"Double", "a ", "toDouble()"},
    {"Int", "an ", "toInt()"},
    {"Bool", "a ", "toBool()"},
    {"String", "a ", "toStringRef()"},
    {"Tensor", "a ", "toTensor()"},
    {"TensorList", "a ", "toTensorList()"},
    {"IntList", "an ", "toIntList()"},
    {"DoubleList", "a ", "toDoubleList()"},
};
}  // namespace

std::string IValue::kind_with_article(std::size_t index) {
    return std::string(kIValueKinds[index].article) + kIValueKinds[index].name;
}

std::string IValue::tagKind() const { return kIValueKinds[value_.index()].name; }

void IValue::throw_wrong_type(const char* accessor, const std::string& wanted) const {
    const IValueKind& held = kIValueKinds[value_.index()];
    std::string value;
    if (const double* d = std::get_if<double>(&value_)) value = " (" + std::to_string(*d) + ")";
    else if (const int64_t* i = std::get_if<int64_t>(&value_)) value = " (" + std::to_string(*i) + ")";
    else if (const bool* b = std::get_if<bool>(&value_)) value = *b ? " (true)" : " (false)";
    else if (const Tensor* t = std::get_if<Tensor>(&value_)) value = " " + (t->defined() ? describe(*t) : "(undefined)");
    const std::string advice =
        isNone() ? "; a saved_data key that forward never set reads as None"
                 : std::string("; read it with ") + held.reader;
    throw std::invalid_argument(std::string("IValue::") + accessor + ": the value is " +
                                kind_with_article(value_.index()) + value + ", not " + wanted + advice);
}

IValue::operator double() const {
    if (const double* d = std::get_if<double>(&value_)) return *d;
    if (const int64_t* i = std::get_if<int64_t>(&value_)) return static_cast<double>(*i);
    if (const bool* b = std::get_if<bool>(&value_)) return *b ? 1.0 : 0.0;
    throw_wrong_type("operator double", "a number");
}

// ---------------------------------------------------------------- apply and backward

namespace detail {

// Where each differentiable output's gradient lies in the flat buffer the function's node is
// recorded on, when there are several.
struct PackLayout {
    struct Slot {
        std::size_t output_index;
        int64_t offset;
        int64_t numel;
        Shape shape;
        DType dtype;
    };
    std::string name;
    std::vector<Slot> slots;
    DType dtype = kFloat32;    // float64 when any output is
    int64_t grads_numel = 0;   // the outputs' elements, one after the other
    // With set_materialize_grads(false), one element per slot after the gradients: nonzero when that
    // output received a gradient, so that backward can tell "none" from zeros.
    bool flags = false;
    SavedTensor buffer;        // the node's own output: unpacks with the node as its history

    int64_t numel() const { return grads_numel + (flags ? static_cast<int64_t>(slots.size()) : 0); }
};

namespace {

bool contains(const std::vector<Tensor>& list, const Tensor& t) {
    return std::any_of(list.begin(), list.end(), [&](const Tensor& x) { return x.same(t); });
}

// The backward of output p's node: its gradient, placed in an otherwise zero buffer. Built from
// differentiable ops, so that a recorded backward (create_graph) stays differentiable.
Tensor into_buffer(const PackLayout& layout, std::size_t p, const Tensor& g) {
    const PackLayout::Slot& slot = layout.slots[p];
    Tensor placed = pad(g.to(layout.dtype).reshape({slot.numel}), {slot.offset, layout.grads_numel - slot.offset - slot.numel});
    if (!layout.flags) return placed;
    Tensor flag = zeros({static_cast<int64_t>(layout.slots.size())}, {.dtype = layout.dtype});
    dispatch(layout.dtype, [&]<class T>() { flag.data<T>()[p] = T(1); });
    return cat({placed, flag});
}

// The node of output p, fed by `buffer` (which has the function's node as its history).
Tensor attach_output(const std::shared_ptr<const PackLayout>& layout, std::size_t p, Tensor target, const Tensor& buffer) {
    return record(layout->name + "[" + std::to_string(layout->slots[p].output_index) + "]", std::move(target), {buffer},
                  [layout, p](const Tensor& g, const GradMask&) { return std::vector<Tensor>{into_buffer(*layout, p, g)}; });
}

std::vector<Tensor> from_buffer(const PackLayout& layout, std::size_t n_outputs, const Tensor& g) {
    std::vector<Tensor> grads(n_outputs);
    for (std::size_t p = 0; p < layout.slots.size(); ++p) {
        const PackLayout::Slot& slot = layout.slots[p];
        if (layout.flags && g.at({layout.grads_numel + static_cast<int64_t>(p)}) == 0.0) continue;
        grads[slot.output_index] = g.narrow(0, slot.offset, slot.numel).view(slot.shape).to(slot.dtype);
    }
    return grads;
}

}  // namespace

struct FunctionCore {
    struct OutputInfo {
        Shape shape;
        DType dtype;
    };
    struct NodeState {
        std::shared_ptr<FunctionCtx> ctx;
        std::string name;
        std::vector<OutputInfo> outputs;
        std::optional<std::size_t> direct;  // the one differentiable output, when the node is recorded on it
        std::vector<bool> is_tensor_argument;
        std::size_t n_tensor_inputs = 0;
        UserBackward backward;
        std::mutex mutex;  // backward passes on several threads may share the node (and its ctx)
    };

    static std::vector<Tensor> unpack(const FunctionCtx& ctx) {
        std::vector<Tensor> out;
        out.reserve(ctx.saved_.size());
        for (const FunctionCtx::SavedSlot& slot : ctx.saved_) {
            Tensor t = slot.value.unpack();
            // A packed output comes back as a new output of the node whose backward runs.
            if (slot.pack_output && t.defined() && is_grad_enabled() && Node::current())
                t = attach_output(ctx.pack_, *slot.pack_output, t.detach(), ctx.pack_->buffer.unpack());
            out.push_back(std::move(t));
        }
        return out;
    }

    static std::vector<Tensor> run_backward(NodeState& s, const Tensor& g, const GradMask& needs) {
        const std::lock_guard<std::mutex> lock(s.mutex);
        FunctionCtx& ctx = *s.ctx;
        ctx.needs_input_grad = NeedsInputGrad(needs);
        std::vector<Tensor> grads(s.outputs.size());
        if (s.direct) grads[*s.direct] = g;
        else grads = from_buffer(*ctx.pack_, s.outputs.size(), g);
        if (ctx.materialize_grads_)
            for (std::size_t i = 0; i < grads.size(); ++i)
                if (!grads[i].defined()) grads[i] = zeros(s.outputs[i].shape, {.dtype = s.outputs[i].dtype});
        // saved() hands out tensors that, under create_graph, carry this node's history: kept in
        // the context after backward (returned or thrown) they would make the node own itself.
        struct ForgetUnpacked {
            FunctionCtx& ctx;
            ~ForgetUnpacked() { ctx.unpacked_.clear(); }
        } forget{ctx};
        return per_tensor_input(s, s.backward(ctx, std::move(grads)));
    }

    // backward may return one gradient per forward argument (libtorch), with extra undefined ones
    // at the end, or one per tensor argument.
    static std::vector<Tensor> per_tensor_input(const NodeState& s, std::vector<Tensor> grads) {
        const std::size_t n_args = s.is_tensor_argument.size();
        auto defined = [](const Tensor& g) { return g.defined(); };
        if (grads.size() > n_args && std::none_of(grads.begin() + static_cast<std::ptrdiff_t>(n_args), grads.end(), defined))
            grads.resize(n_args);
        if (grads.size() == n_args && n_args != s.n_tensor_inputs) {
            std::vector<Tensor> per_input;
            for (std::size_t i = 0; i < n_args; ++i) {
                if (s.is_tensor_argument[i]) per_input.push_back(std::move(grads[i]));
                else if (grads[i].defined())
                    throw std::invalid_argument(s.name + ": backward returned a gradient " + describe(grads[i]) +
                                                " for argument " + std::to_string(i) + " of forward, which is not a tensor "
                                                "(or an empty std::optional); return an undefined Tensor there");
            }
            return per_input;
        }
        if (grads.size() == s.n_tensor_inputs) return grads;
        throw std::invalid_argument(s.name + ": backward returned " + std::to_string(grads.size()) +
                                    " gradients, but forward took " + std::to_string(n_args) + " arguments, " +
                                    std::to_string(s.n_tensor_inputs) + " of them tensors; return one per argument (an "
                                    "undefined Tensor for each non-tensor one) or one per tensor argument");
    }

    static std::vector<Tensor> finish(FunctionCall call, std::shared_ptr<FunctionCtx> ctx, std::vector<Tensor> outputs,
                                      UserBackward backward);
};

std::vector<Tensor> FunctionCore::finish(FunctionCall call, std::shared_ptr<FunctionCtx> ctx, std::vector<Tensor> outputs,
                                         UserBackward backward) {
    const std::string& name = call.name;
    if (outputs.empty()) throw std::invalid_argument(name + ": forward returned no tensors; return at least one");
    for (std::size_t i = 0; i < outputs.size(); ++i)
        if (!outputs[i].defined())
            throw std::invalid_argument(name + ": forward returned an undefined tensor" +
                                        (outputs.size() > 1 ? " as output " + std::to_string(i) : std::string()) +
                                        "; return a defined tensor for every output");
    for (const Tensor& d : ctx->dirty_)
        if (!contains(outputs, d))
            throw std::invalid_argument(name + ": forward passed " + describe(d) + " to mark_dirty but did not return "
                                        "it; a tensor modified in place must be returned as an output");
    // A write through data<T>() may not have counted itself: tensors saved before it must see it.
    for (const Tensor& d : ctx->dirty_) d.bump_version();
    if (!needs_grad(call.inputs)) return outputs;  // no node: nothing will run the backward

    // What each output hands back (`returned`) and the tensor its node goes on (`target`): an alias
    // where the output is an input (it keeps its own history), repeats another output, or already
    // has history; a dirty input is returned itself and takes the alias's history.
    const std::size_t n = outputs.size();
    std::vector<Tensor> returned(n), target(n);
    std::vector<bool> differentiable(n), dirty(n), is_input(n);
    std::vector<std::size_t> diff;
    for (std::size_t i = 0; i < n; ++i) {
        const Tensor& out = outputs[i];
        is_input[i] = contains(call.inputs, out);
        dirty[i] = is_input[i] && contains(ctx->dirty_, out);
        differentiable[i] = is_floating_point(out.dtype()) && !contains(ctx->non_differentiable_, out);
        const bool repeated = std::any_of(outputs.begin(), outputs.begin() + static_cast<std::ptrdiff_t>(i),
                                          [&](const Tensor& o) { return o.same(out); });
        if (dirty[i] && differentiable[i]) {
            if (out.is_leaf() && out.requires_grad())
                throw std::invalid_argument(name + ": forward wrote in place into " + describe(out) +
                                            " (mark_dirty), a leaf tensor that requires grad; its gradient would no longer "
                                            "describe its value. Write into a clone(), or into a tensor computed from it");
            if (out.impl()->is_view)
                throw std::invalid_argument(name + ": forward wrote in place into " + describe(out) +
                                            " (mark_dirty), a view of another tensor, but the base's history cannot see "
                                            "a write through a view; write into the base, or into a clone()");
        }
        if (!differentiable[i]) {
            returned[i] = out.requires_grad() ? out.detach() : out;
            continue;
        }
        diff.push_back(i);
        target[i] = (is_input[i] || repeated || out.requires_grad()) ? out.detach() : out;
        returned[i] = dirty[i] && !repeated ? out : target[i];
    }
    ctx->dirty_.clear();
    ctx->non_differentiable_.clear();
    if (diff.empty()) {
        ctx->to_save_.clear();
        return returned;
    }

    auto state = std::make_shared<NodeState>();
    state->ctx = ctx;
    state->name = name;
    for (const Tensor& out : outputs) state->outputs.push_back({out.shape(), out.dtype()});
    state->is_tensor_argument = std::move(call.is_tensor_argument);
    state->n_tensor_inputs = call.inputs.size();
    state->backward = std::move(backward);

    std::shared_ptr<PackLayout> layout;
    std::vector<std::optional<std::size_t>> slot_of(n);  // output -> its packed slot
    if (diff.size() == 1) {
        state->direct = diff[0];
    } else {
        layout = std::make_shared<PackLayout>();
        layout->name = name;
        for (std::size_t i : diff) {
            slot_of[i] = layout->slots.size();
            layout->slots.push_back({i, layout->grads_numel, outputs[i].numel(), outputs[i].shape(), outputs[i].dtype()});
            layout->grads_numel += outputs[i].numel();
            if (outputs[i].dtype() == kFloat64) layout->dtype = kFloat64;
        }
        layout->flags = !ctx->materialize_grads_;
    }

    // The saved tensors, before the node is recorded (it lists them). An output is the tensor
    // forward returned (not an input returned as it is, which stays a saved input).
    for (const Tensor& t : ctx->to_save_) {
        FunctionCtx::SavedSlot slot;
        std::size_t j = 0;
        while (j < n && !(outputs[j].same(t) && (!is_input[j] || dirty[j]))) ++j;
        if (t.defined() && (j == n || !differentiable[j])) {
            slot.value = SavedTensor(j == n ? t : returned[j]);
        } else if (t.defined() && !layout) {
            slot.value = SavedTensor::output(target[j]);
        } else if (t.defined()) {
            slot.value = SavedTensor(target[j].detach());
            slot.pack_output = slot_of[j];
        }
        ctx->saved_.push_back(std::move(slot));
    }
    ctx->to_save_.clear();

    BackwardFn fn = [state](const Tensor& g, const GradMask& needs) { return run_backward(*state, g, needs); };
    if (!layout) {
        record(name, target[diff[0]], call.inputs, std::move(fn));
    } else {
        Tensor buffer = expand(zeros({1}, {.dtype = layout->dtype}), {layout->numel()});
        layout->buffer = SavedTensor::output(buffer);
        ctx->pack_ = layout;
        buffer = record(name, buffer, call.inputs, std::move(fn));
        for (std::size_t p = 0; p < layout->slots.size(); ++p)
            attach_output(layout, p, target[layout->slots[p].output_index], buffer);
    }
    for (std::size_t i : diff)
        if (dirty[i] && returned[i].same(outputs[i])) {
            outputs[i].impl()->grad_fn = target[i].grad_fn();
            outputs[i].impl()->requires_grad = true;
        }
    return returned;
}

std::vector<Tensor> finish_apply(FunctionCall call, std::shared_ptr<FunctionCtx> ctx, std::vector<Tensor> outputs,
                                 UserBackward backward) {
    return FunctionCore::finish(std::move(call), std::move(ctx), std::move(outputs), std::move(backward));
}

void throw_single_gradient_backward(const std::string& name, std::size_t n_outputs) {
    throw std::invalid_argument(name + ": forward returned " + std::to_string(n_outputs) +
                                " outputs, but backward takes a single gradient; declare backward(FunctionCtx&, "
                                "std::vector<Tensor> grad_outputs) to receive one gradient per output");
}

}  // namespace detail

// ---------------------------------------------------------------- FunctionCtx

void FunctionCtx::mark_dirty(const std::vector<Tensor>& inputs) { dirty_ = inputs; }
void FunctionCtx::mark_non_differentiable(const std::vector<Tensor>& outputs) { non_differentiable_ = outputs; }

std::vector<Tensor> FunctionCtx::get_saved_variables() const { return detail::FunctionCore::unpack(*this); }

const std::vector<Tensor>& FunctionCtx::saved() const {
    unpacked_ = get_saved_variables();
    return unpacked_;
}

}  // namespace tapegrad
