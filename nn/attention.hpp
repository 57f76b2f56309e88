#pragma once
// Attention and stochastic depth, composed of differentiable ops (linear, matmul, softmax, mul),
// so that they have first and second derivatives wherever those ops do.
#include <optional>
#include <string>
#include <tuple>

#include "engine/generator.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace tapegrad {

// PyTorch 2.0's F.scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
// is_causal=False): softmax(q k^T / sqrt(E) + attn_mask) v, with dropout on the attention
// weights. query [..., L, E], key [..., S, E], value [..., S, Ev] (the same leading dimensions);
// the output is [..., L, Ev]. attn_mask, broadcastable to [..., L, S], is an additive float mask
// (-inf where a position must not attend) or, as in PyTorch 2.0, a bool mask that is true where
// a query may attend to a key (false: -inf); is_causal masks every key j > query i instead (no
// attn_mask with it, as in PyTorch). Dropout draws from the default generator, or from `gen`.
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask = Tensor(),
                                    double dropout_p = 0.0, bool is_causal = false);
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, Generator& gen);

// torchvision.ops.stochastic_depth(input, p, mode, training): in training, zeroes whole rows
// (mode "row": one draw per sample along dimension 0) or the whole input (mode "batch") with
// probability p and scales what survives by 1/(1-p); outside training, or with p = 0, the input.
Tensor stochastic_depth(const Tensor& input, double p, const std::string& mode, bool training = true);
Tensor stochastic_depth(const Tensor& input, double p, const std::string& mode, bool training, Generator& gen);

}  // namespace tapegrad

namespace tapegrad::nn {

// torchvision.ops.StochasticDepth(p, mode), drawing from the default generator.
class StochasticDepth : public Module {
public:
    StochasticDepth(double p, std::string mode);
    Tensor forward(const Tensor& x) override;
    void pretty_print(std::ostream& stream) const override;
    double p;
    std::string mode;
};

// nn.MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True, kdim=None, vdim=None,
// batch_first=False), with PyTorch's parameters and names: in_proj_weight [3E, E] (or
// q_proj_weight, k_proj_weight [E, kdim], v_proj_weight [E, vdim] where kdim or vdim differ
// from E), in_proj_bias [3E], out_proj (a Linear). Initialised as PyTorch: xavier_uniform_
// projections, zero biases. Dropout on the attention weights in training, from a generator seeded
// at construction from the default one (as nn::Dropout).
struct MultiheadAttentionOptions {
    double dropout = 0.0;
    bool bias = true;
    std::optional<int64_t> kdim = std::nullopt;
    std::optional<int64_t> vdim = std::nullopt;
    bool batch_first = false;
};

class MultiheadAttention : public Module {
public:
    MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions options = {},
                       Generator& gen = default_generator());
    // query [L, N, E] (or [N, L, E] batch first, or [L, E] unbatched), key [S, N, kdim], value
    // [S, N, vdim]. key_padding_mask [N, S] and attn_mask [L, S] or [N * num_heads, L, S] are
    // additive float masks (-inf hides a key) or bool masks, true where a key is hidden (as
    // PyTorch's: a true element adds -inf). Returns the output [L, N, E] and, with
    // need_weights, the attention weights [N, L, S] averaged over the heads (or
    // [N, num_heads, L, S] without average_attn_weights); else an undefined tensor.
    std::tuple<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                       const Tensor& key_padding_mask = Tensor(), bool need_weights = true,
                                       const Tensor& attn_mask = Tensor(), bool average_attn_weights = true);
    // Self-attention, module(x): the output of forward(x, x, x) without weights.
    Tensor forward(const Tensor& x) override;
    // module(query, key, value): the output of forward(query, key, value).
    Tensor forward_inputs(const std::vector<Tensor>& inputs) override;
    void pretty_print(std::ostream& stream) const override;

    int64_t embed_dim, num_heads, kdim, vdim;
    MultiheadAttentionOptions options;
    Tensor in_proj_weight;                              // [3E, E], or undefined with separate projections
    Tensor q_proj_weight, k_proj_weight, v_proj_weight;  // or these
    Tensor in_proj_bias;                                // [3E], or undefined without bias
    std::shared_ptr<Linear> out_proj;                   // Linear(E, E, bias)
    Generator generator;
};

}  // namespace tapegrad::nn
