#include "ops/kernels/conv_onednn.hpp"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "engine/allocator.hpp"
#include "engine/tensor_math.hpp"
#include "engine/threads.hpp"

namespace tapegrad::kernels {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// CPU streams are cheap; one per thread means no two threads ever share one.
dnnl::stream& cpu_stream() {
    thread_local dnnl::stream stream(cpu_engine());
    return stream;
}

// Scratchpads and blocked weights come from the caching allocator, not from oneDNN's own
// malloc: fresh pages cost tens of microseconds each here (docs/measured.md).
class Buffer {
public:
    explicit Buffer(std::size_t bytes) : bytes_(bytes), ptr_(bytes ? allocator().allocate(bytes) : nullptr) {}
    ~Buffer() {
        if (ptr_) allocator().deallocate(ptr_, bytes_);
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    void* get() const { return ptr_; }

private:
    std::size_t bytes_;
    void* ptr_;
};

dnnl::primitive_attr user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

// A built primitive and the scratchpad it asks for at each run.
struct Step {
    dnnl::primitive prim;
    memory::desc scratchpad;

    void run(std::unordered_map<int, memory> args) const {
        Buffer scratch(scratchpad.get_size());
        if (scratch.get()) args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratchpad, cpu_engine(), scratch.get()));
        prim.execute(cpu_stream(), args);
        cpu_stream().wait();
    }
};

Step make_reorder(const memory::desc& from, const memory::desc& to) {
    const dnnl::reorder::primitive_desc pd(cpu_engine(), from, cpu_engine(), to, user_scratchpad());
    return {dnnl::reorder(pd), pd.scratchpad_desc()};
}

// A reorder from tapegrad's weight layout to the one a primitive chose (or back), or none when
// they are the same.
std::optional<Step> weight_reorder(const memory::desc& from, const memory::desc& to) {
    if (from == to) return std::nullopt;
    return make_reorder(from, to);
}

// ---------------------------------------------------------------- descriptors

memory::desc activation_md(int64_t n, int64_t c, int64_t h, int64_t w) { return {{n, c, h, w}, f32, tag::nhwc}; }

// Grouped weights are 5-D for oneDNN, [G, F/G, C/G, KH, KW]; OIHW memory is already goihw.
memory::desc weights_md(const ConvGeometry& g, bool plain) {
    if (g.groups == 1) return {{g.F, g.C, g.KH, g.KW}, f32, plain ? tag::oihw : tag::any};
    return {{g.groups, g.F / g.groups, g.C / g.groups, g.KH, g.KW}, f32, plain ? tag::goihw : tag::any};
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

ConvDescs conv_descs(const ConvGeometry& g) {
    return {activation_md(g.N, g.C, g.H, g.W),
            weights_md(g, false),
            memory::desc({g.F}, f32, tag::a),
            activation_md(g.N, g.F, g.OH, g.OW),
            {g.stride_h, g.stride_w},
            // oneDNN counts dilation from 0 (no gap), PyTorch from 1.
            {g.dilation_h - 1, g.dilation_w - 1},
            {g.pad_h, g.pad_w}};
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, bool with_bias) {
    const ConvDescs d = conv_descs(g);
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

struct ReorderEntry {
    Step reorder;
};

enum class Kind : int64_t { Forward, BackwardData, BackwardWeights, ToChannelsLast, ToRowMajor };

// Every number a primitive depends on, and which primitive it is. That includes the thread count:
// oneDNN splits the work across threads once, when it builds a primitive, and every run of it
// then uses that many threads, whatever set_num_threads said since.
using Key = std::array<int64_t, 18>;

Key conv_key(Kind kind, const ConvGeometry& g, bool with_bias, bool channels_last_weights, int threads) {
    return {static_cast<int64_t>(kind), g.N, g.C, g.H, g.W, g.F, g.KH, g.KW, g.stride_h, g.stride_w,
            g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, g.groups, with_bias ? 1 : 0, channels_last_weights ? 1 : 0, threads};
}

// Entries are built under the lock (once per shape, so contention does not matter) and never
// erased, so references to them stay valid while other threads insert.
template <class Entry>
class PrimitiveCache {
public:
    template <class Make>
    const Entry& get(const Key& key, Make make) {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(key);
        if (it == entries_.end()) it = entries_.emplace(key, std::make_unique<Entry>(make())).first;
        return *it->second;
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }

private:
    mutable std::mutex mutex_;
    std::map<Key, std::unique_ptr<Entry>> entries_;
};

// One cache per entry type. The engine is made first, so that at exit the cached primitives are
// destroyed before it.
template <class Entry>
PrimitiveCache<Entry>& cache() {
    cpu_engine();
    static PrimitiveCache<Entry> instance;
    return instance;
}

const ForwardEntry& forward_entry(const ConvGeometry& g, bool with_bias, bool channels_last_weights) {
    return cache<ForwardEntry>().get(conv_key(Kind::Forward, g, with_bias, channels_last_weights, get_num_threads()), [&] {
        const auto pd = forward_pd(g, with_bias);
        return ForwardEntry{pd, {dnnl::convolution_forward(pd), pd.scratchpad_desc()},
                            weight_reorder(user_weights_md(g, channels_last_weights), pd.weights_desc())};
    });
}

const BackwardDataEntry& backward_data_entry(const ConvGeometry& g, bool channels_last_weights) {
    return cache<BackwardDataEntry>().get(conv_key(Kind::BackwardData, g, false, channels_last_weights, get_num_threads()), [&] {
        const ConvDescs d = conv_descs(g);
        const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.dst, d.strides,
                                                         d.dilates, d.padding, d.padding);
        const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), forward_pd(g, false));
        return BackwardDataEntry{pd, {dnnl::convolution_backward_data(pd), pd.scratchpad_desc()},
                                 weight_reorder(user_weights_md(g, channels_last_weights), pd.weights_desc())};
    });
}

const BackwardWeightsEntry& backward_weights_entry(const ConvGeometry& g, bool with_bias) {
    return cache<BackwardWeightsEntry>().get(conv_key(Kind::BackwardWeights, g, with_bias, false, get_num_threads()), [&] {
        const ConvDescs d = conv_descs(g);
        using Desc = dnnl::convolution_backward_weights::desc;
        const auto desc = with_bias ? Desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.bias, d.dst, d.strides, d.dilates,
                                           d.padding, d.padding)
                                    : Desc(dnnl::algorithm::convolution_direct, d.src, d.weights, d.dst, d.strides, d.dilates, d.padding,
                                           d.padding);
        const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), forward_pd(g, with_bias));
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

}  // namespace

Tensor to_memory_format(const Tensor& t, MemoryFormat format) {
    if (t.is_contiguous(format)) {
        // Size-1 dimensions make a tensor dense in both formats; their strides say which one it
        // suggests (suggest_memory_format), so they are set to the format's own.
        const Strides canonical = format == MemoryFormat::ChannelsLast ? channels_last_strides(t.shape()) : contiguous_strides(t.shape());
        return t.strides() == canonical ? t.detach() : as_strided(t.detach(), t.shape(), canonical);
    }
    if (t.dtype() != kFloat32 || t.dim() != 4) return as_contiguous(t, format);
    // A strided view is first made dense, then reordered by oneDNN (parallel, vectorized).
    const Tensor src = t.is_contiguous(MemoryFormat::ChannelsLast) ? t : as_contiguous(t);
    const Shape& s = src.shape();
    const bool to_nhwc = format == MemoryFormat::ChannelsLast;
    const memory::desc from({s[0], s[1], s[2], s[3]}, f32, to_nhwc ? tag::nchw : tag::nhwc);
    const memory::desc to({s[0], s[1], s[2], s[3]}, f32, to_nhwc ? tag::nhwc : tag::nchw);
    const Kind kind = to_nhwc ? Kind::ToChannelsLast : Kind::ToRowMajor;
    const Key key{static_cast<int64_t>(kind), s[0], s[1], s[2], s[3], get_num_threads()};
    const ReorderEntry& e = cache<ReorderEntry>().get(key, [&] { return ReorderEntry{make_reorder(from, to)}; });
    Tensor out = empty(s, format);
    e.reorder.run({{DNNL_ARG_FROM, memory(from, cpu_engine(), src.data_ptr())}, {DNNL_ARG_TO, memory(to, cpu_engine(), out.data_ptr())}});
    return out;
}

Tensor conv2d_forward_onednn(const Tensor& x, const Tensor& w_in, const Tensor& bias_in, const ConvGeometry& g) {
    const bool with_bias = bias_in.defined();
    const Tensor w = reads_channels_last(w_in) ? w_in : as_contiguous(w_in);
    const ForwardEntry& e = forward_entry(g, with_bias, reads_channels_last(w));
    Tensor out = empty(g.output_shape(), MemoryFormat::ChannelsLast);
    const Buffer blocked(e.weights_in ? e.pd.weights_desc().get_size() : 0);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(e.pd.src_desc(), cpu_engine(), x.data_ptr())},
        {DNNL_ARG_WEIGHTS, primitive_weights(w, g, e.pd.weights_desc(), e.weights_in, blocked)},
        {DNNL_ARG_DST, memory(e.pd.dst_desc(), cpu_engine(), out.data_ptr())}};
    Tensor bias;
    if (with_bias) {
        bias = as_contiguous(bias_in);
        args.emplace(DNNL_ARG_BIAS, memory(e.pd.bias_desc(), cpu_engine(), bias.data_ptr()));
    }
    e.conv.run(std::move(args));
    return out;
}

Tensor conv2d_backward_data_onednn(const Tensor& dout, const Tensor& w_in, const ConvGeometry& g) {
    const Tensor w = reads_channels_last(w_in) ? w_in : as_contiguous(w_in);
    const BackwardDataEntry& e = backward_data_entry(g, reads_channels_last(w));
    Tensor dx = empty(g.input_shape(), MemoryFormat::ChannelsLast);
    const Buffer blocked(e.weights_in ? e.pd.weights_desc().get_size() : 0);
    e.conv.run({{DNNL_ARG_DIFF_DST, memory(e.pd.diff_dst_desc(), cpu_engine(), dout.data_ptr())},
                {DNNL_ARG_WEIGHTS, primitive_weights(w, g, e.pd.weights_desc(), e.weights_in, blocked)},
                {DNNL_ARG_DIFF_SRC, memory(e.pd.diff_src_desc(), cpu_engine(), dx.data_ptr())}});
    return dx;
}

ConvWeightGrads conv2d_backward_weights_onednn(const Tensor& x, const Tensor& dout, const ConvGeometry& g, bool with_bias) {
    // Its reduction over the batch and the pixels is split by thread, so its bits depend on the
    // thread count; deterministic mode builds and runs it on one thread.
    const ThreadCountGuard threads(split_sum_threads());
    const BackwardWeightsEntry& e = backward_weights_entry(g, with_bias);
    ConvWeightGrads grads{empty(g.weight_shape()), with_bias ? empty({g.F}) : Tensor()};
    const memory user(weights_md(g, true), cpu_engine(), grads.weight.data_ptr());
    const Buffer blocked(e.weights_out ? e.pd.diff_weights_desc().get_size() : 0);
    const memory diff_weights = e.weights_out ? memory(e.pd.diff_weights_desc(), cpu_engine(), blocked.get()) : user;
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(e.pd.src_desc(), cpu_engine(), x.data_ptr())},
                                         {DNNL_ARG_DIFF_DST, memory(e.pd.diff_dst_desc(), cpu_engine(), dout.data_ptr())},
                                         {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
    if (with_bias) args.emplace(DNNL_ARG_DIFF_BIAS, memory(e.pd.diff_bias_desc(), cpu_engine(), grads.bias.data_ptr()));
    e.conv.run(std::move(args));
    if (e.weights_out) e.weights_out->run({{DNNL_ARG_FROM, diff_weights}, {DNNL_ARG_TO, user}});
    return grads;
}

std::size_t conv2d_primitive_cache_size() {
    return cache<ForwardEntry>().size() + cache<BackwardDataEntry>().size() + cache<BackwardWeightsEntry>().size() +
           cache<ReorderEntry>().size();
}

}  // namespace tapegrad::kernels
