// Seeing inside a model: NameScope, anomaly traces with the user's line, to_dot, the profiler and
// its Chrome trace, the allocator's memory report, and Module forward hooks.
#include <doctest/doctest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "engine/allocator.hpp"
#include "engine/autograd.hpp"
#include "engine/function.hpp"
#include "engine/generator.hpp"
#include "engine/graph.hpp"
#include "engine/profiler.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "ops/activation.hpp"
#include "ops/arithmetic.hpp"
#include "ops/batch_norm.hpp"
#include "ops/conv.hpp"
#include "ops/loss.hpp"
#include "ops/pooling.hpp"
#include "ops/reduce.hpp"
#include "tests/text_files.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
using tg::Tensor;
using tapegrad::testing::count;

namespace {

// ---- a small JSON reader, enough to check that the Chrome trace is valid JSON and read it back
struct Json {
    using Object = std::map<std::string, Json>;
    using Array = std::vector<Json>;
    std::variant<std::nullptr_t, bool, double, std::string, Array, Object> value;
    const Object& object() const { return std::get<Object>(value); }
    const Array& array() const { return std::get<Array>(value); }
    const std::string& string() const { return std::get<std::string>(value); }
    double number() const { return std::get<double>(value); }
};

class JsonParser {
public:
    explicit JsonParser(const std::string& text) : s_(text) {}
    Json parse_document() {
        Json j = parse();
        skip();
        if (i_ != s_.size()) fail("trailing characters");
        return j;
    }

private:
    [[noreturn]] void fail(const std::string& what) { throw std::runtime_error("json: " + what + " at " + std::to_string(i_)); }
    void skip() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    char peek() {
        skip();
        if (i_ >= s_.size()) fail("unexpected end");
        return s_[i_];
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++i_;
    }
    bool literal(const char* word) {
        const std::string w(word);
        if (s_.compare(i_, w.size(), w) != 0) return false;
        i_ += w.size();
        return true;
    }
    std::string parse_string() {
        expect('"');
        std::string out;
        while (true) {
            if (i_ >= s_.size()) fail("unterminated string");
            const char c = s_[i_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) fail("bad escape");
            const char e = s_[i_++];
            if (e == 'u') {
                if (i_ + 4 > s_.size()) fail("bad \\u escape");
                for (int k = 0; k < 4; ++k)
                    if (!std::isxdigit(static_cast<unsigned char>(s_[i_ + k]))) fail("bad \\u escape");
                out += '?';
                i_ += 4;
            } else if (std::string("\"\\/bfnrt").find(e) != std::string::npos) {
                out += e;
            } else {
                fail("bad escape");
            }
        }
    }
    Json parse() {
        const char c = peek();
        if (c == '{') {
            ++i_;
            Json::Object obj;
            if (peek() == '}') return ++i_, Json{obj};
            while (true) {
                std::string key = parse_string();
                expect(':');
                obj[key] = parse();
                if (peek() == ',') {
                    ++i_;
                    continue;
                }
                expect('}');
                return Json{obj};
            }
        }
        if (c == '[') {
            ++i_;
            Json::Array arr;
            if (peek() == ']') return ++i_, Json{arr};
            while (true) {
                arr.push_back(parse());
                if (peek() == ',') {
                    ++i_;
                    continue;
                }
                expect(']');
                return Json{arr};
            }
        }
        if (c == '"') return Json{parse_string()};
        if (literal("true")) return Json{true};
        if (literal("false")) return Json{false};
        if (literal("null")) return Json{nullptr};
        const char* begin = s_.c_str() + i_;
        char* end = nullptr;
        const double v = std::strtod(begin, &end);
        if (end == begin) fail("unexpected character");
        i_ += static_cast<std::size_t>(end - begin);
        return Json{v};
    }
    const std::string& s_;
    std::size_t i_ = 0;
};

std::shared_ptr<nn::Sequential> tiny_cnn(tg::Generator& gen) {
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(2, 4, 3, gen, tg::Conv2dOptions{.padding = 1}), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(4 * 5 * 5, 3, gen)});
}

}  // namespace

TEST_CASE("JSON reader used below accepts JSON and refuses broken text") {
    CHECK_NOTHROW(JsonParser(R"({"a":[1,2.5e3,-3],"b":{"c":"x\"y"},"d":true,"e":null})").parse_document());
    CHECK_THROWS(JsonParser(R"({"a":[1,2,]})").parse_document());
    CHECK_THROWS(JsonParser(R"({"a":1)").parse_document());
    CHECK_THROWS(JsonParser(R"({"a":1} x)").parse_document());
}

TEST_CASE("NameScope nests with '/' and restores the outer scope") {
    CHECK(tg::NameScope::current().empty());
    {
        tg::NameScope a("encoder");
        {
            tg::NameScope b("block3");
            CHECK(tg::NameScope::current() == "encoder/block3");
        }
        CHECK(tg::NameScope::current() == "encoder");
    }
    CHECK(tg::NameScope::current().empty());
}

TEST_CASE("in anomaly mode a backward error names the forward op, its scope and the user's line") {
    tg::AnomalyModeGuard anomaly;
    Tensor x = tg::tensor({1.0, -2.0}, {.requires_grad = true});
    Tensor y;
    int line = 0;
    {
        tg::NameScope scope("block3");
        y = tg::relu(x), line = __LINE__;
    }
    // A NaN arriving from above: relu's backward passes it on, and anomaly mode stops there.
    const Tensor nan_grad = tg::tensor({std::nan(""), 1.0});
    try {
        y.backward(nan_grad);
        FAIL("expected an AnomalyError");
    } catch (const tg::AnomalyError& e) {
        const std::string msg = e.what();
        CHECK(msg.find("'relu'") != std::string::npos);
        CHECK(msg.find("in scope 'block3'") != std::string::npos);
        CHECK(msg.find("test_inspect.cpp:" + std::to_string(line)) != std::string::npos);
    }
    CHECK_FALSE(x.grad().defined());

    // Through a module: the line that called the module, not the layer's source.
    tg::Generator gen(0);
    nn::Linear lin(2, 2, gen);
    Tensor z;
    z = lin(tg::tensor({{1.0, 2.0}}).to(tg::kFloat32)), line = __LINE__;
    try {
        z.backward(tg::tensor({{std::nan(""), 0.0}}).to(tg::kFloat32));
        FAIL("expected an AnomalyError");
    } catch (const tg::AnomalyError& e) {
        const std::string msg = e.what();
        CHECK(msg.find("'linear'") != std::string::npos);
        CHECK(msg.find("test_inspect.cpp:" + std::to_string(line)) != std::string::npos);
        CHECK(msg.find("layers.cpp") == std::string::npos);
    }
}

TEST_CASE("in anomaly mode an arithmetic op's backward error names the op and the caller's line") {
    tg::AnomalyModeGuard anomaly;
    const Tensor x = tg::tensor({1.0, -2.0}, {.requires_grad = true});
    const Tensor y = tg::sub(x, tg::tensor({0.5, 0.5}));
    const std::string where = "forward op 'sub', created at test_inspect.cpp:" + std::to_string(__LINE__ - 1);
    CHECK_THROWS_WITH_AS(y.backward(tg::tensor({std::nan(""), 1.0})), doctest::Contains(where.c_str()), tg::AnomalyError);
}

TEST_CASE("in anomaly mode a saved tensor changed in place names the forward op, its scope and line") {
    tg::AnomalyModeGuard anomaly;
    Tensor x = tg::tensor({1.0, -2.0}, {.requires_grad = true});
    Tensor y;
    int line = 0;
    {
        tg::NameScope scope("block3");
        y = tg::relu(x * 1.0), line = __LINE__;  // relu saves its output
    }
    y.mul_(2.0);  // changes what relu saved
    const std::string where = "forward op 'relu' in scope 'block3', created at test_inspect.cpp:" + std::to_string(line);
    CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains(where.c_str()), std::invalid_argument);
}

namespace {
struct WrongShape : tg::Function<WrongShape> {
    static constexpr const char* name = "wrong_shape";
    static Tensor forward(tg::FunctionCtx&, const Tensor& a) { return a * 1.0; }
    static std::vector<Tensor> backward(tg::FunctionCtx&, const Tensor&) { return {tg::ones({5})}; }
};
}  // namespace

TEST_CASE("in anomaly mode a shape error in backward names the op and its scope") {
    Tensor x = tg::tensor({1.0, 2.0}, {.requires_grad = true});
    Tensor y;
    {
        tg::AnomalyModeGuard anomaly;
        tg::NameScope scope("head");
        y = WrongShape::apply(x).sum();
    }
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("forward op 'wrong_shape' in scope 'head'"), std::logic_error);
    // Outside any scope and anomaly mode there is nothing to add.
    Tensor y2 = WrongShape::apply(x).sum();
    bool threw = false;
    try {
        y2.backward();
    } catch (const std::logic_error& e) {
        threw = true;
        CHECK(std::string(e.what()).find("forward op") == std::string::npos);
    }
    CHECK(threw);
}

TEST_CASE("to_dot draws one box per op with shapes and saved bytes, and names parameters") {
    tg::Generator gen(1);
    auto model = tiny_cnn(gen);
    const Tensor x = tg::randn({2, 2, 5, 5}, gen);
    Tensor loss = tg::cross_entropy((*model)(x), {0, 2});
    const std::string dot = tg::to_dot(loss, *model);
    CHECK(dot.rfind("digraph", 0) == 0);
    CHECK(dot.find("0.weight\\n[4,2,3,3] float32") != std::string::npos);
    CHECK(dot.find("3.bias\\n[3] float32") != std::string::npos);
    // Each box is titled with the node's PyTorch-style name and the op's.
    CHECK(dot.find("Conv2dBackward0 (conv2d)\\n[2,4,5,5] float32") != std::string::npos);
    CHECK(dot.find("CrossEntropyBackward0 (cross_entropy)\\n[] float32") != std::string::npos);
    // conv2d saved its input for dW (2*2*5*5 floats = 400 B), not its weight: the input needs no
    // gradient; and its geometry and kernel choice. linear saved both (2*100 and 3*100 floats), by name.
    CHECK(dot.find("(conv2d)\\n[2,4,5,5] float32\\nsaved input: [2,2,5,5] float32 400 B\\nsaved weight: (no values kept)"
                   "\\nsaved stride: {1,1}\\nsaved padding: {1,1}\\nsaved dilation: {1,1}\\nsaved groups: 1\\nsaved kernels: fast\"") !=
          std::string::npos);
    CHECK(dot.find("saved input: [2,100] float32 800 B\\nsaved weight: [3,100] float32 1.2 KiB\\nsaved input_shape: [2,100]") !=
          std::string::npos);
    // ops: conv2d, relu, flatten (a view: the row-major input keeps the activations row-major, as
    // in PyTorch), linear, cross_entropy; leaves: the 4 parameters
    CHECK(count(dot, "shape=box, style=filled, fillcolor=\"#f4f4f4\"") == 5);
    CHECK(count(dot, "shape=ellipse") == 4);
    CHECK(count(dot, " -> ") == 5 - 1 + 4 + 1);  // op chain, leaves into ops, last op into the output
    loss.backward();
    CHECK(tg::to_dot(loss).find("(saved tensors freed)") != std::string::npos);
    // Without names, leaves are drawn by shape.
    CHECK(tg::to_dot(loss).find("leaf\\n[4,2,3,3] float32") != std::string::npos);
}

TEST_CASE("to_dot names what an op definition saved, tensors and other values alike") {
    tg::Generator gen(4);
    const Tensor x = tg::randn({2, 3, 6, 6}, gen).requires_grad_();
    const Tensor w = tg::ones({3}).requires_grad_(), b = tg::zeros({3}).requires_grad_();
    const Tensor normalised = tg::batch_norm(x, Tensor(), Tensor(), w, b, {.eps = 1e-3});
    const Tensor y = tg::max_pool2d(normalised, {.kernel_size = 3, .stride = 2, .padding = 1});
    const std::string dot = tg::to_dot(tg::relu(y));
    // max_pool2d keeps the argmax (54 int32 indices) and its geometry, and the input's version only.
    CHECK(dot.find("(max_pool2d)\\n[2,3,3,3] float32\\nsaved argmax: [2,3,3,3] int32 216 B\\nsaved argmax_layout: contiguous"
                   "\\nsaved input_shape: [2,3,6,6]\\nsaved kernel_size: {3,3}\\nsaved stride: {2,2}\\nsaved padding: {1,1}"
                   "\\nsaved dilation: {1,1}\\nsaved input_version: (no values kept)\"") != std::string::npos);
    // batch_norm keeps x (216 floats), the weight, the batch statistics in float64, the mode and eps.
    CHECK(dot.find("(batch_norm)\\n[2,3,6,6] float32\\nsaved input: [2,3,6,6] float32 864 B\\nsaved weight: [3] float32 12 B"
                   "\\nsaved mean: [3] float64 24 B\\nsaved invstd: [3] float64 24 B\\nsaved training: true\\nsaved eps: 0.001\"") !=
          std::string::npos);
    // relu keeps its result.
    CHECK(dot.find("(relu)\\n[2,3,3,3] float32\\nsaved result: [2,3,3,3] float32 216 B\"") != std::string::npos);
}

TEST_CASE("the profiler counts, times and measures ops per op and per scope, and writes a Chrome trace") {
    tg::Generator gen(2);
    auto model = tiny_cnn(gen);
    const Tensor x = tg::randn({2, 2, 5, 5}, gen);
    constexpr int kSteps = 3;
    tg::Profiler prof;
    for (int s = 0; s < kSteps; ++s) {
        Tensor loss;
        {
            tg::NameScope scope("net");
            loss = tg::cross_entropy((*model)(x), {0, 1});
        }
        model->zero_grad();
        loss.backward();
    }
    prof.stop();
    // After stop nothing more is recorded.
    (void)tg::cross_entropy((*model)(x), {0, 1});

    auto find = [](const std::vector<tg::Profiler::Stats>& rows, const std::string& name) {
        for (const auto& r : rows)
            if (r.name == name) return r;
        FAIL("no row " << name);
        return tg::Profiler::Stats{};
    };
    const auto ops = prof.by_op();
    const auto conv = find(ops, "conv2d");
    CHECK(conv.forward_calls == kSteps);
    CHECK(conv.backward_calls == kSteps);
    CHECK(conv.forward_self_ms <= conv.forward_total_ms);
    CHECK(conv.forward_total_ms > 0);
    CHECK(conv.bytes_allocated >= 2 * 4 * 5 * 5 * sizeof(float) * kSteps);  // the outputs at least
    // FLOPs: 2 * N*F*OH*OW * C*KH*KW forward, twice that backward.
    const double conv_fwd = 2.0 * 2 * 4 * 5 * 5 * 2 * 3 * 3;
    CHECK(conv.flops == doctest::Approx(3 * conv_fwd * kSteps));
    const auto lin = find(ops, "linear");
    CHECK(lin.flops == doctest::Approx(3 * 2.0 * 2 * 3 * 100 * kSteps));
    // flatten is a composition (reshape, then view): each is timed in forward; only the view records
    // a node. An op called inside another's forward has its own row (linear reshapes its output).
    CHECK(find(ops, "flatten").forward_calls == kSteps);
    CHECK(find(ops, "flatten").backward_calls == 0);
    CHECK(find(ops, "view").forward_calls >= kSteps);
    CHECK(find(ops, "view").backward_calls == kSteps);
    CHECK(find(ops, "view").forward_total_ms > 0);
    int64_t op_calls = 0;
    for (const auto& r : ops) op_calls += r.forward_calls;
    const auto net = find(prof.by_scope(), "net");
    CHECK(net.forward_calls == op_calls);      // every op of the steps ran in the scope
    CHECK(net.backward_calls == 5 * kSteps);  // conv2d, relu, view, linear, cross_entropy: backward is attributed to the forward's scope
    const std::string table = prof.table();
    CHECK(table.find("conv2d") != std::string::npos);
    CHECK(table.find("net") != std::string::npos);

    const std::string path = std::string(TAPEGRAD_SOURCE_DIR) + "/build/test_profiler_trace.json";
    std::filesystem::create_directories(std::string(TAPEGRAD_SOURCE_DIR) + "/build");
    prof.write_chrome_trace(path);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::remove(path.c_str());
    const Json trace = JsonParser(text.str()).parse_document();
    int forward = 0, backward = 0;
    double last_forward_start = -1;
    for (const Json& e : trace.object().at("traceEvents").array()) {
        const auto& o = e.object();
        if (o.at("ph").string() != "X") continue;
        CHECK(o.at("dur").number() >= 0);
        CHECK(o.count("ts") == 1);
        if (o.at("cat").string() == "forward") ++forward, last_forward_start = o.at("ts").number();
        if (o.at("cat").string() == "backward") {
            ++backward;
            CHECK(o.at("tid").number() == 2);
        }
    }
    CHECK(backward == 5 * kSteps);
    CHECK(forward == op_calls);
    CHECK(last_forward_start >= 0);
}

TEST_CASE("while tracking, the allocator's summary lists the largest live blocks and the op that made them") {
    tg::allocator().set_tracking(true);
    tg::Generator gen(3);
    const Tensor x = tg::randn({8, 3, 32, 32}, gen);
    const Tensor w = tg::randn({16, 3, 3, 3}, gen);
    Tensor out;
    {
        tg::NameScope scope("stem");
        out = tg::conv2d(x, w, Tensor(), {.padding = 1});  // 8*16*32*32 floats: 512 KiB
    }
    const tg::AllocatorStats stats = tg::allocator().stats();
    tg::allocator().set_tracking(false);
    REQUIRE_FALSE(stats.largest_live.empty());
    CHECK(stats.largest_live[0].bytes >= 8 * 16 * 32 * 32 * sizeof(float));
    CHECK(stats.largest_live[0].made_by == "stem/conv2d");
    const std::string summary = stats.summary();
    CHECK(summary.find("in use") != std::string::npos);
    CHECK(summary.find("peak") != std::string::npos);
    CHECK(summary.find("stem/conv2d") != std::string::npos);
    CHECK(tg::allocator().stats().largest_live.empty());  // tracking off
}

TEST_CASE("module forward pre-hooks and forward hooks: order, replacement, removal") {
    tg::Generator gen(4);
    auto relu = std::make_shared<nn::ReLU>();
    auto seq = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{relu});
    std::vector<std::string> order;
    tg::HookHandle pre = relu->register_forward_pre_hook([&](nn::Module& m, const Tensor& in) {
        order.push_back("pre " + m.type_name());
        return in * 2.0;  // replaces the input
    });
    tg::HookHandle post = relu->register_forward_hook([&](nn::Module&, const Tensor& in, const Tensor& out) {
        order.push_back("post");
        CHECK(tg::allclose(in, tg::tensor({2.0, -4.0})));
        return out + 1.0;  // replaces the output
    });
    tg::HookHandle outer = seq->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) {
        order.push_back("seq");
        return Tensor();  // keeps the output
    });
    const Tensor y = (*seq)(tg::tensor({1.0, -2.0}));
    CHECK(tg::allclose(y, tg::tensor({3.0, 1.0})));
    CHECK(order == std::vector<std::string>{"pre ReLU", "post", "seq"});
    // forward() itself runs no hooks, as in PyTorch
    order.clear();
    relu->forward(tg::tensor({1.0}));
    CHECK(order.empty());
    pre.remove();
    post.remove();
    outer.remove();
    CHECK(tg::allclose((*seq)(tg::tensor({1.0, -2.0})), tg::tensor({1.0, 0.0})));
    CHECK(order.empty());
}

namespace {
// A module with two inputs, as a decoder block forward(x, skip): x + 10 * skip.
struct TwoInputs : nn::Module {
    TwoInputs() : nn::Module("TwoInputs") {}
    Tensor forward_inputs(const std::vector<Tensor>& inputs) override {
        REQUIRE(inputs.size() == 2);
        return inputs[0] + inputs[1] * 10.0;
    }
};
}  // namespace

TEST_CASE("module(x, skip): forward with several inputs, hooks see all of them") {
    TwoInputs m;
    const Tensor x = tg::tensor({1.0, 2.0}), skip = tg::tensor({3.0, 4.0});
    CHECK(tg::allclose(m(x, skip), tg::tensor({31.0, 42.0})));
    CHECK(tg::allclose(m({x, skip}), tg::tensor({31.0, 42.0})));

    std::vector<std::size_t> seen;
    tg::HookHandle pre = m.register_forward_pre_hook([&](nn::Module&, const std::vector<Tensor>& in) {
        seen.push_back(in.size());
        return std::vector<Tensor>{in[1], in[0]};  // swaps the inputs
    });
    tg::HookHandle post = m.register_forward_hook([&](nn::Module&, const std::vector<Tensor>& in, const Tensor& out) {
        seen.push_back(in.size());
        CHECK(tg::allclose(in[0], skip));  // the pre-hook's replacement
        return out * 2.0;
    });
    CHECK(tg::allclose(m(x, skip), tg::tensor({2 * 13.0, 2 * 24.0})));
    CHECK(seen == std::vector<std::size_t>{2, 2});
    pre.remove();
    post.remove();

    // A one-Tensor hook on a call with two inputs, a wrong count, a module without forward: errors
    // that name the module.
    tg::HookHandle single = m.register_forward_hook([](nn::Module&, const Tensor&, const Tensor&) { return Tensor(); });
    CHECK_THROWS_WITH_AS(m(x, skip), doctest::Contains("TwoInputs: a forward hook taking one Tensor was called with 2 inputs"),
                         std::invalid_argument);
    single.remove();
    nn::ReLU relu;
    CHECK_THROWS_WITH_AS(relu(x, skip), doctest::Contains("ReLU: forward takes one input but was called with 2"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(relu(x, skip, x), doctest::Contains("called with 3"), std::invalid_argument);
    nn::Module bare;
    CHECK_THROWS_AS(bare(x), std::logic_error);
    // Single-input hooks keep working on single-input calls, through the vector form too.
    tg::HookHandle pre1 = relu.register_forward_pre_hook([](nn::Module&, const Tensor& in) { return in * -1.0; });
    CHECK(tg::allclose(relu(std::vector<Tensor>{x}), tg::tensor({0.0, 0.0})));
    pre1.remove();
}
