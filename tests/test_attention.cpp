// Attention against PyTorch 1.13 (tests/models/attention_reference.tgck, written by
// tests/models/make_attention_reference.py): nn::MultiheadAttention with PyTorch's weights loaded
// into it gives PyTorch's outputs, attention weights and input gradients; scaled dot-product
// attention gives the formula's values and passes gradcheck and gradgradcheck in float64.
// Then stochastic depth, and the errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;

namespace {
const std::map<std::string, Tensor>& reference() {
    static const std::map<std::string, Tensor> ref = [] {
        std::map<std::string, Tensor> r;
        for (auto& [name, t] : nn::load(std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/attention_reference.tgck")) r[name] = t;
        return r;
    }();
    return ref;
}

Tensor entry(const std::string& name) {
    const auto it = reference().find(name);
    if (it == reference().end()) throw std::runtime_error("attention_reference.tgck has no entry " + name);
    return it->second;
}

Tensor ref_or_none(const std::string& name) {
    const auto it = reference().find(name);
    return it == reference().end() ? Tensor() : it->second;
}

// The case's PyTorch state_dict, loaded strictly (every name must match PyTorch's).
void load_pytorch_weights(nn::Module& module, const std::string& name) {
    nn::NamedTensors dict;
    const std::string prefix = name + ".param.";
    for (const auto& [key, t] : reference())
        if (key.rfind(prefix, 0) == 0) dict.emplace_back(key.substr(prefix.size()), t);
    module.load_state_dict(dict);
}

void check_mha_case(const std::string& name, int64_t embed_dim, int64_t num_heads, nn::MultiheadAttentionOptions options,
                    bool average) {
    CAPTURE(name);
    nn::MultiheadAttention mha(embed_dim, num_heads, options);
    mha.to(tg::kFloat64);
    load_pytorch_weights(mha, name);
    Tensor query = entry(name + ".query").detach();
    query.requires_grad_();
    auto [out, weights] = mha.forward(query, entry(name + ".key"), entry(name + ".value"), ref_or_none(name + ".key_padding_mask"), true,
                                      ref_or_none(name + ".attn_mask"), average);
    CHECK(out.shape() == entry(name + ".out").shape());
    CHECK(tg::allclose(out, entry(name + ".out"), 1e-10, 1e-12));
    CHECK(weights.shape() == entry(name + ".weights").shape());
    CHECK(tg::allclose(weights, entry(name + ".weights"), 1e-10, 1e-12));
    const Tensor grad_query = tg::grad(std::vector<Tensor>{tg::sum(out * entry(name + ".cot"))}, std::vector<Tensor>{query})[0];
    CHECK(tg::allclose(grad_query, entry(name + ".grad_query"), 1e-10, 1e-12));
}
}  // namespace

TEST_CASE("MultiheadAttention with PyTorch's weights gives PyTorch 1.13's outputs, weights and gradients") {
    check_mha_case("self", 8, 2, {}, true);
    check_mha_case("padded", 8, 2, {}, true);
    check_mha_case("cross", 8, 4, {.bias = false, .kdim = 5, .vdim = 6, .batch_first = true}, false);
    check_mha_case("unbatched", 6, 3, {}, true);
}

TEST_CASE("MultiheadAttention adds a float key_padding_mask to a float attn_mask, as PyTorch documents") {
    tg::manual_seed(0);
    nn::MultiheadAttention mha(8, 2);
    const Tensor x = tg::randn({4, 3, 8});
    const Tensor causal = tg::from_vector(std::vector<float>{0, -INFINITY, -INFINITY, -INFINITY, 0, 0, -INFINITY, -INFINITY, 0, 0, 0,
                                                             -INFINITY, 0, 0, 0, 0},
                                          {4, 4});
    std::vector<float> padding_values(12, 0.0f);
    padding_values[1 * 4 + 3] = -INFINITY;
    const Tensor padding = tg::from_vector(padding_values, {3, 4});
    // The same sum as one per-head mask [N * H, L, S].
    const Tensor per_head = (causal.reshape({1, 1, 4, 4}) + padding.reshape({3, 1, 1, 4}) + tg::zeros({3, 2, 4, 4})).reshape({6, 4, 4});
    auto [out, weights] = mha.forward(x, x, x, padding, true, causal);
    auto [out_summed, weights_summed] = mha.forward(x, x, x, Tensor(), true, per_head);
    CHECK(tg::allclose(out, out_summed, 1e-6, 1e-6));
    CHECK(tg::allclose(weights, weights_summed, 1e-6, 1e-6));
    // The padded key of the second sample gets no weight; the others' last key does (from query 3).
    CHECK(weights.to_vector<double>()[16 + 3 * 4 + 3] == 0.0);
    CHECK(weights.to_vector<double>()[3 * 4 + 3] > 0.0);
}

TEST_CASE("MultiheadAttention has PyTorch's parameters, initialisation and errors") {
    tg::manual_seed(0);
    nn::MultiheadAttention packed(8, 2);
    std::vector<std::string> names;
    for (const auto& [n, t] : packed.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
    // xavier_uniform_ on [24, 8]: bound sqrt(6 / 32); zero biases.
    for (double w : packed.in_proj_weight.to_vector<double>()) CHECK(std::abs(w) <= std::sqrt(6.0 / 32.0));
    for (double b : packed.in_proj_bias.to_vector<double>()) CHECK(b == 0.0);
    nn::MultiheadAttention separate(8, 2, {.bias = false, .kdim = 3});
    names.clear();
    for (const auto& [n, t] : separate.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"});
    CHECK(separate.k_proj_weight.shape() == tg::Shape{8, 3});

    CHECK_THROWS_WITH_AS(nn::MultiheadAttention(10, 3), doctest::Contains("embed_dim (10) must be positive and divisible by num_heads (3)"),
                         std::invalid_argument);
    const Tensor x = tg::zeros({4, 2, 8});
    CHECK_THROWS_WITH_AS(packed.forward(x, tg::zeros({4, 2, 6}), x), doctest::Contains("kdim 8"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(packed.forward(x, x, x, tg::zeros({2, 5})), doctest::Contains("key_padding_mask must be [N, S]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(packed.forward(x, x, x, Tensor(), true, tg::zeros({3, 4})), doctest::Contains("attn_mask must be [L, S] = [4, 4]"),
                         std::invalid_argument);
    // Self-attention through the module call: forward(x, x, x)'s output.
    CHECK(tg::allclose(packed(x), std::get<0>(packed.forward(x, x, x)), 0.0, 0.0));
    CHECK(std::get<1>(packed.forward(x, x, x, Tensor(), false)).defined() == false);
}

TEST_CASE("scaled_dot_product_attention gives the formula's values with a float mask and with is_causal") {
    const Tensor q = entry("sdpa.masked.q"), k = entry("sdpa.masked.k"), v = entry("sdpa.masked.v");
    CHECK(tg::allclose(tg::scaled_dot_product_attention(q, k, v, entry("sdpa.masked.mask")), entry("sdpa.masked.out"), 1e-12, 1e-12));
    CHECK(tg::allclose(tg::scaled_dot_product_attention(q, k, v, Tensor(), 0.0, true), entry("sdpa.causal.out"), 1e-12, 1e-12));
    CHECK_THROWS_WITH_AS(tg::scaled_dot_product_attention(q, k, v, entry("sdpa.masked.mask"), 0.0, true),
                         doctest::Contains("attn_mask or is_causal, not both"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::scaled_dot_product_attention(q, k.narrow(3, 0, 4), v), doctest::Contains("same embedding size"),
                         std::invalid_argument);
    // Dropout p = 1 drops every weight.
    CHECK(tg::allclose(tg::scaled_dot_product_attention(q, k, v, Tensor(), 1.0), tg::zeros({2, 3, 4, 7}, {.dtype = tg::kFloat64}), 0.0,
                       0.0));
}

TEST_CASE("scaled_dot_product_attention passes gradcheck and gradgradcheck in float64") {
    tg::Generator gen(5);
    const auto opts = tg::TensorOptions{.dtype = tg::kFloat64, .requires_grad = true};
    const std::vector<Tensor> inputs = {tg::randn({2, 3, 4}, gen, opts), tg::randn({2, 5, 4}, gen, opts), tg::randn({2, 5, 3}, gen, opts),
                                        tg::randn({3, 5}, gen, opts)};
    const auto masked = [](const std::vector<Tensor>& in) { return tg::scaled_dot_product_attention(in[0], in[1], in[2], in[3]); };
    CHECK(tg::gradcheck(masked, inputs).passed);
    CHECK(tg::gradgradcheck(masked, inputs).passed);
    const std::vector<Tensor> qkv(inputs.begin(), inputs.begin() + 3);
    const auto causal = [](const std::vector<Tensor>& in) { return tg::scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), 0.0, true); };
    CHECK(tg::gradcheck(causal, qkv).passed);
    CHECK(tg::gradgradcheck(causal, qkv).passed);
}

TEST_CASE("stochastic_depth drops whole rows or the whole batch in training, as torchvision's") {
    const Tensor x = tg::ones({64, 3});
    tg::manual_seed(1);
    const auto rows = tg::stochastic_depth(x, 0.25, "row").to_vector<double>();
    int kept = 0;
    for (std::size_t r = 0; r < 64; ++r) {
        // Each row entirely 0 or entirely 1 / (1 - p).
        CHECK((rows[3 * r] == 0.0 || std::abs(rows[3 * r] - 1.0 / 0.75) < 1e-6));
        CHECK(rows[3 * r] == rows[3 * r + 2]);
        kept += rows[3 * r] != 0.0;
    }
    CHECK(kept > 32);
    CHECK(kept < 64);
    const auto batch = tg::stochastic_depth(x, 0.5, "batch").to_vector<double>();
    CHECK(std::count(batch.begin(), batch.end(), batch[0]) == 192);
    CHECK(tg::stochastic_depth(x, 1.0, "row").to_vector<double>() == std::vector<double>(192, 0.0));
    nn::StochasticDepth layer(0.5, "row");
    layer.eval();
    CHECK(layer(x).to_vector<double>() == x.to_vector<double>());
    CHECK_THROWS_WITH_AS(nn::StochasticDepth(0.5, "column"), doctest::Contains("mode must be \"row\" or \"batch\""), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tg::stochastic_depth(x, 1.5, "row"), doctest::Contains("p must be in [0, 1], got 1.5"), std::invalid_argument);
}
