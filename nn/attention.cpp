#include "nn/attention.hpp"

#include <cmath>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <vector>

#include "nn/init.hpp"
#include "ops/compare.hpp"
#include "ops/dropout.hpp"
#include "ops/linear.hpp"
#include "ops/loss.hpp"
#include "ops/reduce.hpp"
#include "ops/view.hpp"

namespace tapegrad {
namespace {
// [..., R, C] as [B, R, C], the most batch dimensions matmul takes.
Tensor as_batched(const Tensor& t) {
    const int64_t rows = t.size(-2), cols = t.size(-1);
    return t.reshape({rows * cols == 0 ? 0 : t.numel() / (rows * cols), rows, cols});
}

Shape with_last(Shape shape, int64_t last) {
    shape[shape.size() - 1] = last;
    return shape;
}

// softmax(q k^T / sqrt(E) + mask) v and the attention weights (after dropout, as PyTorch returns
// them). q [..., L, E], k [..., S, E], v [..., S, Ev] with the same leading dimensions.
std::tuple<Tensor, Tensor> attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double dropout_p,
                                     Generator& gen) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    Tensor scores = matmul(as_batched(q), as_batched(k).transpose(1, 2)).reshape(with_last(q.shape(), k.size(-2))) * scale;
    if (mask.defined()) scores = scores + mask;
    const Tensor weights = dropout(softmax(scores, -1), dropout_p, dropout_p > 0.0, gen);
    return {matmul(as_batched(weights), as_batched(v)).reshape(with_last(q.shape(), v.size(-1))), weights};
}

// A mask as an additive float mask of `dtype`: a bool one becomes -inf where a key is hidden (where
// it is true when `true_hides`, as MultiheadAttention's masks; where it is false otherwise, as
// scaled_dot_product_attention's) and 0 elsewhere; a float mask is returned as it is.
Tensor additive_mask(const Tensor& mask, DType dtype, bool true_hides) {
    if (!mask.defined() || mask.dtype() != kBool) return mask;
    return masked_fill(zeros(mask.shape(), {.dtype = dtype}), true_hides ? mask : logical_not(mask), -std::numeric_limits<double>::infinity());
}

void check_sdpa_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double dropout_p, bool is_causal) {
    const std::string op = "scaled_dot_product_attention";
    if (!q.defined() || !k.defined() || !v.defined()) throw std::invalid_argument(op + ": query, key and value must be defined");
    const std::string shapes = " (query " + describe(q) + ", key " + describe(k) + ", value " + describe(v) + ")";
    if (q.dim() < 2 || q.dim() != k.dim() || q.dim() != v.dim())
        throw std::invalid_argument(op + ": query, key and value must have the same number of dimensions, at least 2" + shapes);
    for (int64_t d = 0; d + 2 < static_cast<int64_t>(q.dim()); ++d)
        if (q.size(d) != k.size(d) || q.size(d) != v.size(d))
            throw std::invalid_argument(op + ": query, key and value must have the same leading (batch) dimensions" + shapes);
    if (q.size(-1) != k.size(-1))
        throw std::invalid_argument(op + ": query and key must have the same embedding size (last dimension)" + shapes);
    if (k.size(-2) != v.size(-2))
        throw std::invalid_argument(op + ": key and value must have the same sequence length (dimension -2)" + shapes);
    if (!(dropout_p >= 0.0 && dropout_p <= 1.0))
        throw std::invalid_argument(op + ": dropout_p must be in [0, 1], got " + std::to_string(dropout_p));
    if (is_causal && mask.defined())
        throw std::invalid_argument(op + ": pass attn_mask or is_causal, not both (is_causal builds its own mask)");
}

// 0 where key j may be attended from query i (j <= i), -inf elsewhere: PyTorch's is_causal.
Tensor causal_mask(int64_t query_length, int64_t key_length, DType dtype) {
    std::vector<double> values(static_cast<std::size_t>(query_length * key_length), 0.0);
    for (int64_t i = 0; i < query_length; ++i)
        for (int64_t j = i + 1; j < key_length; ++j)
            values[static_cast<std::size_t>(i * key_length + j)] = -std::numeric_limits<double>::infinity();
    return from_vector(values, {query_length, key_length}, {.dtype = dtype});
}

void check_stochastic_depth(double p, const std::string& mode) {
    if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("stochastic_depth: p must be in [0, 1], got " + std::to_string(p));
    if (mode != "row" && mode != "batch")
        throw std::invalid_argument("stochastic_depth: mode must be \"row\" or \"batch\", got \"" + mode + "\"");
}
}  // namespace

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, Generator& gen) {
    check_sdpa_inputs(query, key, value, attn_mask, dropout_p, is_causal);
    const Tensor mask = is_causal ? causal_mask(query.size(-2), key.size(-2), query.dtype())
                                  : additive_mask(attn_mask, query.dtype(), /*true_hides=*/false);
    return std::get<0>(attention(query, key, value, mask, dropout_p, gen));
}

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal) {
    return scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, default_generator());
}

Tensor stochastic_depth(const Tensor& input, double p, const std::string& mode, bool training, Generator& gen) {
    check_stochastic_depth(p, mode);
    if (!training || p == 0.0) return input;
    if (!input.defined() || input.dim() == 0)
        throw std::invalid_argument("stochastic_depth: expects an input of at least one dimension, got " + describe(input));
    const double survival = 1.0 - p;
    Shape noise_shape;
    noise_shape.resize(input.dim(), 1);
    if (mode == "row") noise_shape[0] = input.size(0);
    std::vector<double> noise(static_cast<std::size_t>(noise_shape[0]));
    {
        const auto guard = gen.lock();
        // torchvision: bernoulli(survival), divided by survival where that is positive.
        for (double& n : noise) n = gen.uniform() < survival ? 1.0 / survival : 0.0;
    }
    return input * from_vector(noise, noise_shape, {.dtype = input.dtype()});
}

Tensor stochastic_depth(const Tensor& input, double p, const std::string& mode, bool training) {
    return stochastic_depth(input, p, mode, training, default_generator());
}

}  // namespace tapegrad

namespace tapegrad::nn {

StochasticDepth::StochasticDepth(double p, std::string mode) : Module("StochasticDepth"), p(p), mode(std::move(mode)) {
    check_stochastic_depth(p, this->mode);
}

Tensor StochasticDepth::forward(const Tensor& x) { return stochastic_depth(x, p, mode, is_training()); }

void StochasticDepth::pretty_print(std::ostream& stream) const { stream << "tg::nn::StochasticDepth(p=" << p << ", mode=" << mode << ')'; }

namespace {
Generator forked(Generator& gen) {
    const auto guard = gen.lock();
    return Generator(gen.next_u64());
}

int64_t checked_embed_dim(int64_t embed_dim, int64_t num_heads) {
    if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0)
        throw std::invalid_argument("MultiheadAttention: embed_dim (" + std::to_string(embed_dim) + ") must be positive and divisible by num_heads (" +
                                    std::to_string(num_heads) + ")");
    return embed_dim;
}
}  // namespace

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions options, Generator& gen)
    : Module("MultiheadAttention"),
      embed_dim(checked_embed_dim(embed_dim, num_heads)),
      num_heads(num_heads),
      kdim(options.kdim.value_or(embed_dim)),
      vdim(options.vdim.value_or(embed_dim)),
      options(options),
      generator(0) {
    if (kdim <= 0 || vdim <= 0 || !(options.dropout >= 0.0 && options.dropout <= 1.0))
        throw std::invalid_argument("MultiheadAttention: kdim (" + std::to_string(kdim) + ") and vdim (" + std::to_string(vdim) +
                                    ") must be positive and dropout (" + std::to_string(options.dropout) + ") in [0, 1]");
    const bool packed = kdim == embed_dim && vdim == embed_dim;
    if (packed) {
        in_proj_weight = register_parameter("in_proj_weight", empty({3 * embed_dim, embed_dim}));
    } else {
        q_proj_weight = register_parameter("q_proj_weight", empty({embed_dim, embed_dim}));
        k_proj_weight = register_parameter("k_proj_weight", empty({embed_dim, kdim}));
        v_proj_weight = register_parameter("v_proj_weight", empty({embed_dim, vdim}));
    }
    if (options.bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * embed_dim}));
    // PyTorch's order of draws: out_proj's Linear initialisation, then the projections.
    out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, gen, options.bias));
    if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
    for (Tensor* w : {&in_proj_weight, &q_proj_weight, &k_proj_weight, &v_proj_weight})
        if (w->defined()) init::xavier_uniform_(*w, gen);
    generator = forked(gen);
}

std::tuple<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                       const Tensor& key_padding_mask, bool need_weights, const Tensor& attn_mask,
                                                       bool average_attn_weights) {
    const std::string shapes = " (query " + describe(query) + ", key " + describe(key) + ", value " + describe(value) + ")";
    const bool batched = query.dim() == 3;
    if ((query.dim() != 2 && query.dim() != 3) || key.dim() != query.dim() || value.dim() != query.dim())
        throw std::invalid_argument("MultiheadAttention: query, key and value must all be 3-D (batched) or all 2-D (unbatched)" + shapes);
    if (query.size(-1) != embed_dim || key.size(-1) != kdim || value.size(-1) != vdim)
        throw std::invalid_argument("MultiheadAttention: the last dimensions must be embed_dim " + std::to_string(embed_dim) + ", kdim " +
                                    std::to_string(kdim) + " and vdim " + std::to_string(vdim) + shapes);
    // Everything as [N, L, E].
    auto to_batch_first = [&](const Tensor& t) { return !batched ? unsqueeze(t, 0) : options.batch_first ? t : t.transpose(0, 1); };
    const Tensor q_in = to_batch_first(query), k_in = to_batch_first(key), v_in = to_batch_first(value);
    const int64_t N = q_in.size(0), L = q_in.size(1), S = k_in.size(1), H = num_heads, head_dim = embed_dim / num_heads;
    if (k_in.size(0) != N || v_in.size(0) != N || v_in.size(1) != S)
        throw std::invalid_argument("MultiheadAttention: query, key and value must have the same batch size, and key and value the same length" + shapes);

    auto weight_of = [&](int i, const Tensor& separate) { return in_proj_weight.defined() ? in_proj_weight.narrow(0, i * embed_dim, embed_dim) : separate; };
    auto bias_of = [&](int i) { return in_proj_bias.defined() ? in_proj_bias.narrow(0, i * embed_dim, embed_dim) : Tensor(); };
    // [N, T, E] -> [N, H, T, head_dim]
    auto heads = [&](const Tensor& t, int64_t length) { return t.reshape({N, length, H, head_dim}).transpose(1, 2); };
    const Tensor q = heads(linear(q_in, weight_of(0, q_proj_weight), bias_of(0)), L);
    const Tensor k = heads(linear(k_in, weight_of(1, k_proj_weight), bias_of(1)), S);
    const Tensor v = heads(linear(v_in, weight_of(2, v_proj_weight), bias_of(2)), S);

    Tensor mask;
    if (attn_mask.defined()) {
        const bool per_head = attn_mask.dim() == 3 && attn_mask.shape() == Shape{N * H, L, S};
        if (!(attn_mask.dim() == 2 && attn_mask.shape() == Shape{L, S}) && !per_head)
            throw std::invalid_argument("MultiheadAttention: attn_mask must be [L, S] = [" + std::to_string(L) + ", " + std::to_string(S) +
                                        "] or [N * num_heads, L, S] = [" + std::to_string(N * H) + ", " + std::to_string(L) + ", " +
                                        std::to_string(S) + "], got " + describe(attn_mask));
        const Tensor additive = additive_mask(attn_mask, q.dtype(), /*true_hides=*/true);
        mask = per_head ? additive.reshape({N, H, L, S}) : additive;
    }
    if (key_padding_mask.defined()) {
        const Shape expected = batched ? Shape{N, S} : Shape{S};
        if (key_padding_mask.shape() != expected)
            throw std::invalid_argument("MultiheadAttention: key_padding_mask must be [N, S] (or [S] unbatched) = " +
                                        tapegrad::to_string(expected) + ", got " + describe(key_padding_mask));
        const Tensor padding = additive_mask(key_padding_mask, q.dtype(), /*true_hides=*/true).reshape({N, 1, 1, S});
        mask = mask.defined() ? mask + padding : padding;
    }
    const double dropout_p = is_training() ? options.dropout : 0.0;
    auto [heads_out, weights] = attention(q, k, v, mask, dropout_p, generator);
    Tensor out = out_proj->forward(heads_out.transpose(1, 2).reshape({N, L, embed_dim}));
    out = !batched ? squeeze(out, 0) : options.batch_first ? out : out.transpose(0, 1);
    if (!need_weights) return {out, Tensor()};
    if (average_attn_weights) weights = mean(weights, {1});
    return {out, batched ? weights : squeeze(weights, 0)};
}

Tensor MultiheadAttention::forward(const Tensor& x) { return std::get<0>(forward(x, x, x, Tensor(), false)); }

Tensor MultiheadAttention::forward_inputs(const std::vector<Tensor>& inputs) {
    if (inputs.size() == 1) return forward(inputs[0]);
    if (inputs.size() != 3)
        throw std::invalid_argument("MultiheadAttention: takes (x) or (query, key, value), got " + std::to_string(inputs.size()) +
                                    " inputs; call forward(query, key, value, key_padding_mask, ...) for the masks");
    return std::get<0>(forward(inputs[0], inputs[1], inputs[2], Tensor(), false));
}

void MultiheadAttention::pretty_print(std::ostream& stream) const { stream << "tg::nn::MultiheadAttention"; }

}  // namespace tapegrad::nn
