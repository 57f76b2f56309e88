#include "ops/kernels/conv_onednn.hpp"

#include <array>
#include <optional>

#include "engine/tensor_math.hpp"
#include "engine/threads.hpp"
#include "ops/kernels/bfloat16.hpp"
#include "ops/kernels/onednn_primitives.hpp"
#include "ops/kernels/transpose.hpp"

namespace tapegrad::kernels {
namespace {

using dnnl::memory;
using onednn::Buffer;
using onednn::cpu_engine;
using onednn::make_reorder;
using onednn::Step;
using onednn::user_scratchpad;
using tag = memory::format_tag;
using dt = memory::data_type;
constexpr auto f32 = dt::f32;

// The data type of the operands a pass reads (activations, weights, incoming gradients) under
// `precision`; what it writes is float32 either way.
dt operand_type(Precision precision) { return precision == Precision::BFloat16 ? dt::bf16 : f32; }

// A reorder from tapegrad's weight layout to the one a primitive chose (or back), or none when
// they are the same.
std::optional<Step> weight_reorder(const memory::desc& from, const memory::desc& to) {
    if (from == to) return std::nullopt;
    return make_reorder(from, to);
}

// ---------------------------------------------------------------- descriptors

memory::desc activation_md(int64_t n, int64_t c, int64_t h, int64_t w, dt type = f32) { return {{n, c, h, w}, type, tag::nhwc}; }

// Grouped weights are 5-D for oneDNN, [G, F/G, C/G, KH, KW]; OIHW memory is already goihw.
memory::desc weights_md(const ConvGeometry& g, bool plain, dt type = f32) {
    if (g.groups == 1) return {{g.F, g.C, g.KH, g.KW}, type, plain ? tag::oihw : tag::any};
    return {{g.groups, g.F / g.groups, g.C / g.groups, g.KH, g.KW}, type, plain ? tag::goihw : tag::any};
}

// The caller's weight as it lies in memory: OIHW, or OHWI for a channels-last weight (PyTorch's
// model.to(channels_last)), which the primitives' weight reorders then read in place.
memory::desc user_weights_md(const ConvGeometry& g, bool channels_last) {
    if (!channels_last) return weights_md(g, true);
    const int64_t fg = g.F / g.groups, cg = g.C / g.groups;
    const memory::dims strides{fg * cg * g.KH * g.KW, cg * g.KH * g.KW, 1, g.KW * cg, cg};
    if (g.groups == 1) return {{g.F, g.C, g.KH, g.KW}, f32, memory::dims(strides.begin() + 1, strides.end())};
    return {{g.groups, fg, cg, g.KH, g.KW}, f32, strides};
}

// Whether w is read in place as OHWI; any layout other than OIHW and OHWI is copied to OIHW first.
bool reads_channels_last(const Tensor& w) { return !w.is_contiguous() && w.is_contiguous(MemoryFormat::ChannelsLast); }

struct ConvDescs {
    memory::desc src, weights, bias, dst;  // weights: format `any`
    memory::dims strides, dilates, padding;
};

// The data types of a pass's src (or diff_src), weights (or diff_weights) and dst (or diff_dst);
// the bias is float32.
struct Types {
    dt src = f32, weights = f32, dst = f32;
};

ConvDescs conv_descs(const ConvGeometry& g, Types t = {}) {
    return {activation_md(g.N, g.C, g.H, g.W, t.src),
            weights_md(g, false, t.weights),
            memory::desc({g.F}, f32, tag::a),
            activation_md(g.N, g.F, g.OH, g.OW, t.dst),
            {g.stride_h, g.stride_w},
            // oneDNN counts dilation from 0 (no gap), PyTorch from 1.
            {g.dilation_h - 1, g.dilation_w - 1},
            {g.pad_h, g.pad_w}};
}

// bf16: bf16 activations and weights in, float32 out.
dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, bool with_bias, Precision precision) {
    const ConvDescs d = conv_descs(g, {operand_type(precision), operand_type(precision), f32});
    const auto desc = with_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                                                  d.src, d.weights, d.bias, d.dst, d.strides, d.dilates, d.padding,
                                                                  d.padding)
                                : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                                                  d.src, d.weights, d.dst, d.strides, d.dilates, d.padding, d.padding);
    return {desc, user_scratchpad(), cpu_engine()};
}

// ---------------------------------------------------------------- the cache

struct ForwardEntry {
    dnnl::convolution_forward::primitive_desc pd;
    Step conv;
    std::optional<Step> weights_in;  // OIHW -> pd.weights_desc()
};

struct BackwardDataEntry {
    dnnl::convolution_backward_data::primitive_desc pd;
    Step conv;
    std::optional<Step> weights_in;  // OIHW -> pd.weights_desc()
};

struct BackwardWeightsEntry {
    dnnl::convolution_backward_weights::primitive_desc pd;
    Step conv;
    std::optional<Step> weights_out;  // pd.diff_weights_desc() -> OIHW
};

enum class Kind : int64_t { Forward, BackwardData, BackwardWeights };

// Every number a primitive depends on, and which primitive it is. That includes the thread count:
// oneDNN splits the work across threads once, when it builds a primitive, and every run of it
// then uses that many threads, whatever set_num_threads said since.
using Key = std::array<int64_t, 19>;

Key conv_key(Kind kind, const ConvGeometry& g, bool with_bias, bool channels_last_weights, Precision precision) {
    return {static_cast<int64_t>(kind), g.N, g.C, g.H, g.W, g.F, g.KH, g.KW, g.stride_h, g.stride_w,
            g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, g.groups, with_bias ? 1 : 0, channels_last_weights ? 1 : 0,
            static_cast<int64_t>(operand_type(precision)), get_num_threads()};
}

template <class Entry>
onednn::PrimitiveCache<Key, Entry>& cache() {
    return onednn::cache<Key, Entry>();
}

const ForwardEntry& forward_entry(const ConvGeometry& g, bool with_bias, bool channels_last_weights, Precision precision) {
    return cache<ForwardEntry>().get(conv_key(Kind::Forward, g, with_bias, channels_last_weights, precision), [&] {
        const auto pd = forward_pd(g, with_bias, precision);
        return ForwardEntry{pd, {dnnl::convolution_forward(pd), pd.scratchpad_desc()},
                            weight_reorder(user_weights_md(g, channels_last_weights), pd.weights_desc())};
    });
}

// bf16: bf16 weights and dout in, float32 dx out.
const BackwardDataEntry& backward_data_entry(const ConvGeometry& g, bool channels_last_weights, Precision precision) {
    return cache<BackwardDataEntry>().get(conv_key(Kind::BackwardData, g, false, channels_last_weights, precision), [&] {
        const ConvDescs d = conv_descs(g, {f32, operand_type(precision), operand_type(precision)});
        const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.dst, d.strides,
                                                         d.dilates, d.padding, d.padding);
        const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), forward_pd(g, false, precision));
        return BackwardDataEntry{pd, {dnnl::convolution_backward_data(pd), pd.scratchpad_desc()},
                                 weight_reorder(user_weights_md(g, channels_last_weights), pd.weights_desc())};
    });
}

// bf16: bf16 x and dout in, float32 dW and db out.
const BackwardWeightsEntry& backward_weights_entry(const ConvGeometry& g, bool with_bias, Precision precision) {
    return cache<BackwardWeightsEntry>().get(conv_key(Kind::BackwardWeights, g, with_bias, false, precision), [&] {
        const ConvDescs d = conv_descs(g, {operand_type(precision), f32, operand_type(precision)});
        using Desc = dnnl::convolution_backward_weights::desc;
        const auto desc = with_bias ? Desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.bias, d.dst, d.strides, d.dilates,
                                           d.padding, d.padding)
                                    : Desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.dst, d.strides, d.dilates, d.padding,
                                           d.padding);
        const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), cpu_engine(),
                                                                    forward_pd(g, with_bias, precision));
        return BackwardWeightsEntry{pd, {dnnl::convolution_backward_weights(pd), pd.scratchpad_desc()},
                                    weight_reorder(pd.diff_weights_desc(), weights_md(g, true))};
    });
}

// Hands the primitive its weights: the OIHW or OHWI tensor itself, or a blocked copy in `blocked`.
memory primitive_weights(const Tensor& w, const ConvGeometry& g, const memory::desc& want, const std::optional<Step>& reorder,
                         const Buffer& blocked) {
    memory user(user_weights_md(g, reads_channels_last(w)), cpu_engine(), w.data_ptr());
    if (!reorder) return user;
    memory out(want, cpu_engine(), blocked.get());
    reorder->run({{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, out}});
    return out;
}

// Room for the bfloat16 copy of a float32 activation when the primitive reads bf16 (`md`), else none.
std::size_t converted_bytes(const memory::desc& md, const Tensor& t) {
    return md.data_type() == f32 ? 0 : static_cast<std::size_t>(t.numel()) * sizeof(BFloat16);
}

// Hands the primitive an activation, channels-last float32: the tensor itself, or its bfloat16
// copy in `converted` (sized by converted_bytes).
memory primitive_activation(const memory::desc& md, const Tensor& t, const Buffer& converted) {
    if (md.data_type() == f32) return memory(md, cpu_engine(), t.data_ptr());
    convert_to_bfloat16(t.data<float>(), static_cast<BFloat16*>(converted.get()), t.numel());
    return memory(md, cpu_engine(), converted.get());
}

}  // namespace

Tensor to_memory_format(const Tensor& t, MemoryFormat format) {
    if (t.is_contiguous(format)) {
        // Size-1 dimensions make a tensor dense in both formats; their strides say which one it
        // suggests (suggest_memory_format), so they are set to the format's own.
        const Strides canonical = format == MemoryFormat::ChannelsLast ? channels_last_strides(t.shape()) : contiguous_strides(t.shape());
        return t.strides() == canonical ? t.detach() : as_strided(t.detach(), t.shape(), canonical);
    }
    if (t.dtype() != kFloat32 || t.dim() != 4) return as_contiguous(t, format);
    // A strided view is first made dense, then each image transposed: [C, H*W] <-> [H*W, C].
    const Tensor src = t.is_contiguous(MemoryFormat::ChannelsLast) ? t : as_contiguous(t);
    const Shape& s = src.shape();
    const int64_t channels = s[1], pixels = s[2] * s[3];
    Tensor out = empty(s, format);
    if (format == MemoryFormat::ChannelsLast)
        transpose_planes(src.data<float>(), out.data<float>(), s[0], channels, pixels);
    else
        transpose_planes(src.data<float>(), out.data<float>(), s[0], pixels, channels);
    return out;
}

Tensor conv2d_forward_onednn(const Tensor& x, const Tensor& w_in, const Tensor& bias_in, const ConvGeometry& g, Precision precision) {
    const bool with_bias = bias_in.defined();
    const Tensor w = reads_channels_last(w_in) ? w_in : as_contiguous(w_in);
    const ForwardEntry& e = forward_entry(g, with_bias, reads_channels_last(w), precision);
    Tensor out = empty(g.output_shape(), MemoryFormat::ChannelsLast);
    const Buffer blocked(e.weights_in ? e.pd.weights_desc().get_size() : 0);
    const Buffer converted(converted_bytes(e.pd.src_desc(), x));
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, primitive_activation(e.pd.src_desc(), x, converted)},
        {DNNL_ARG_WEIGHTS, primitive_weights(w, g, e.pd.weights_desc(), e.weights_in, blocked)},
        {DNNL_ARG_DST, memory(e.pd.dst_desc(), cpu_engine(), out.data_ptr())}};
    Tensor bias;
    if (with_bias) {
        // autocast rounds the bias to bfloat16, as PyTorch's bf16 convolution takes it
        bias = precision == Precision::BFloat16 ? rounded_to_bfloat16(bias_in) : as_contiguous(bias_in);
        args.emplace(DNNL_ARG_BIAS, memory(e.pd.bias_desc(), cpu_engine(), bias.data_ptr()));
    }
    e.conv.run(std::move(args));
    return out;
}

Tensor conv2d_backward_data_onednn(const Tensor& dout, const Tensor& w_in, const ConvGeometry& g, Precision precision) {
    const Tensor w = reads_channels_last(w_in) ? w_in : as_contiguous(w_in);
    const BackwardDataEntry& e = backward_data_entry(g, reads_channels_last(w), precision);
    Tensor dx = empty(g.input_shape(), MemoryFormat::ChannelsLast);
    const Buffer blocked(e.weights_in ? e.pd.weights_desc().get_size() : 0);
    const Buffer converted(converted_bytes(e.pd.diff_dst_desc(), dout));
    e.conv.run({{DNNL_ARG_DIFF_DST, primitive_activation(e.pd.diff_dst_desc(), dout, converted)},
                {DNNL_ARG_WEIGHTS, primitive_weights(w, g, e.pd.weights_desc(), e.weights_in, blocked)},
                {DNNL_ARG_DIFF_SRC, memory(e.pd.diff_src_desc(), cpu_engine(), dx.data_ptr())}});
    return dx;
}

ConvWeightGrads conv2d_backward_weights_onednn(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias,
                                               Precision precision) {
    // Its reduction over the batch and the pixels is split by thread, so its bits depend on the
    // thread count; deterministic mode builds and runs it on one thread.
    const ThreadCountGuard threads(split_sum_threads());
    const BackwardWeightsEntry& e = backward_weights_entry(g, with_bias, precision);
    ConvWeightGrads grads{empty(g.weight_shape()), with_bias ? empty({g.F}) : Tensor()};
    const memory user(weights_md(g, true), cpu_engine(), grads.weight.data_ptr());
    const Buffer blocked(e.weights_out ? e.pd.diff_weights_desc().get_size() : 0);
    const memory diff_weights = e.weights_out ? memory(e.pd.diff_weights_desc(), cpu_engine(), blocked.get()) : user;
    const Buffer x_converted(converted_bytes(e.pd.src_desc(), x)), dout_converted(converted_bytes(e.pd.diff_dst_desc(), dout));
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, primitive_activation(e.pd.src_desc(), x, x_converted)},
                                         {DNNL_ARG_DIFF_DST, primitive_activation(e.pd.diff_dst_desc(), dout, dout_converted)},
                                         {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
    if (with_bias) args.emplace(DNNL_ARG_DIFF_BIAS, memory(e.pd.diff_bias_desc(), cpu_engine(), grads.bias.data_ptr()));
    e.conv.run(std::move(args));
    if (e.weights_out) e.weights_out->run({{DNNL_ARG_FROM, diff_weights}, {DNNL_ARG_TO, user}});
    return grads;
}

std::size_t conv2d_primitive_cache_size() {
    return cache<ForwardEntry>().size() + cache<BackwardDataEntry>().size() + cache<BackwardWeightsEntry>().size();
}

}  // namespace tapegrad::kernels
