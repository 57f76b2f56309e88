// What keeps the replicas consistent beyond averaged gradients: the debug check of the
// collectives' order, parameters no rank used, and the buffers seen by evaluation. ctest runs
// each case under `mpirun -np 2`; alone (a world of one) they still pass.
#include <stdexcept>

#include "tests/distributed/distributed_helpers.hpp"

using namespace distributed_test;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Sets the group's options for a scope.
struct OptionsGuard {
    dist::ProcessGroupOptions saved = group().options();
    explicit OptionsGuard(const dist::ProcessGroupOptions& options) { group().set_options(options); }
    ~OptionsGuard() { group().set_options(saved); }
};

}  // namespace

TEST_CASE("debug_mode_names_both_ranks_collectives_when_their_order_differs") {
    const int world = group().size(), rank = group().rank();
    std::string message;
    {
        OptionsGuard debug({.timeout_seconds = 60, .debug = dist::DebugLevel::Detail});
        std::vector<double> values{1, 2, 3};
        group().all_reduce_sum(values);  // the same on every rank: the check lets it through
        CHECK(values[0] == world);
        const Tensor t = tg::zeros({4});
        try {
            // Rank 0 reduces 3 values where the others broadcast 4: without the check the two
            // would pair, as MPI matches collectives by order only.
            if (rank == 0) group().all_reduce_sum(values);
            else group().broadcast({t}, 0);
        } catch (const std::runtime_error& e) {
            message = e.what();
        }
    }
    CAPTURE(message);
    if (world == 1) {
        CHECK(message.empty());
        return;
    }
    CHECK(contains(message, "on the user channel differs between ranks: rank 0 issues all_reduce_sum of 3 float64 "
                            "values, rank 1 issues broadcast of 4 float32 values from rank 0"));
    // Every rank refused it, so the next collectives still pair.
    std::vector<double> one{1.0};
    group().all_reduce_sum(one);
    CHECK(one[0] == world);
}

// The second head is used by every rank in the first step (it gets a momentum buffer) and by
// none in the second: as in PyTorch's reducer and in single-process training, its gradient
// stays undefined and SGD's momentum and weight decay leave it where it was.
TEST_CASE("a_parameter_no_rank_used_keeps_an_undefined_gradient_and_stays_put") {
    for (bool overlap : {true, false}) {
        CAPTURE(overlap);
        tg::Generator gen(5);
        auto model = std::make_shared<TwoHeads>(gen);
        dist::DistributedDataParallel ddp(model, {.bucket_cap_mb = 1e-6, .overlap_with_backward = overlap});
        nn::SGD optimizer(ddp.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
        tg::Generator data_gen(9);
        const Tensor x = tg::randn({3, 4}, data_gen);
        for (bool use_second : {true, false}) {
            model->use_second = use_second;
            const std::string first_before = raw_bytes(model->first->parameters());
            const std::string second_before = raw_bytes(model->second->parameters());
            optimizer.zero_grad();
            ddp.forward(x).sum().backward();
            ddp.synchronize();
            CHECK(model->second->weight.grad().defined() == use_second);
            CHECK(model->second->bias.grad().defined() == use_second);
            optimizer.step();
            CHECK(raw_bytes(model->first->parameters()) != first_before);
            CHECK((raw_bytes(model->second->parameters()) != second_before) == use_second);
        }
    }
}

// Each rank trains on its own data, so after the last training forward each rank's BatchNorm
// running statistics are its own. The first forward after it, here in eval mode under
// NoGradGuard, takes rank 0's first (PyTorch's broadcast_buffers), so every rank gives the same
// outputs; later no-grad forwards broadcast nothing, so ranks may evaluate different numbers of
// batches (rank r runs 1 + r of them here; an extra broadcast would leave rank 0 behind).
TEST_CASE("evaluation_after_training_gives_the_same_outputs_on_every_rank") {
    const int world = group().size(), rank = group().rank();
    OptionsGuard bounded({.timeout_seconds = 30});
    auto model = make_bn_model(7 + static_cast<uint64_t>(rank));
    dist::DistributedDataParallel ddp(model);
    nn::SGD optimizer(ddp.parameters(), {.lr = 0.1});
    const Data data = make_data(8, 1000 + static_cast<uint64_t>(rank));  // each rank its own data
    for (int step = 0; step < 3; ++step) {
        const auto [x, y] = rows_of(data, 0, 8);
        Tensor loss = tg::cross_entropy(ddp.forward(x), y);
        optimizer.zero_grad();
        loss.backward();
        ddp.synchronize();
        optimizer.step();
    }
    ddp.eval();
    tg::NoGradGuard no_grad;
    const Tensor probe = rows_of(make_data(4, 77), 0, 4).first;  // the same on every rank
    const std::string logits = raw_bytes({ddp.forward(probe)});
    const std::vector<std::string> all = group().all_gather(logits);
    for (const std::string& other : all) CHECK(other == all[0]);
    for (int extra = 0; extra < rank; ++extra) CHECK(raw_bytes({ddp.forward(probe)}) == logits);
    std::vector<double> one{1.0};
    group().all_reduce_sum(one);
    CHECK(one[0] == world);
}
