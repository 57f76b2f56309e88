// Uneven inputs: ranks with different numbers of batches, inside a distributed::Join. ctest runs
// each case under `mpirun -np 2`; alone (a world of one) they still pass.
#include <stdexcept>

#include "distributed/join.hpp"
#include "tests/distributed/distributed_helpers.hpp"

using namespace distributed_test;

namespace {

// One step of training through the wrapper.
void train_step(dist::DistributedDataParallel& ddp, nn::Optimizer& optimizer, const Tensor& x,
                const std::vector<int64_t>& y) {
    Tensor loss = tg::cross_entropy(ddp.forward(x), y);
    optimizer.zero_grad();
    loss.backward();
    ddp.synchronize();
    optimizer.step();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

// PyTorch's test_ddp_grad_div_uneven_inputs: rank 0 has 3 inputs, the others 5. The loss is the
// sum of a bias-free Linear(5, 5) applied to 50 * ones(1, 5), so every gradient entry a training
// rank computes is 50, and a rank that joined contributes 0. PyTorch divides the sum by the
// initial world size by default (25 once rank 0 has joined, with 2 ranks), or by the number of
// ranks still training (50 throughout) with divide_by_initial_world_size=False.
TEST_CASE("join_divides_the_gradients_of_uneven_inputs_as_pytorch") {
    const int world = group().size(), rank = group().rank();
    for (bool by_initial_world_size : {true, false}) {
        CAPTURE(by_initial_world_size);
        tg::Generator gen(3 + static_cast<uint64_t>(rank));  // the wrapper broadcasts rank 0's weights
        auto model = std::make_shared<nn::Linear>(5, 5, gen, false);
        dist::DistributedDataParallel ddp(model);
        nn::SGD optimizer(ddp.parameters(), {.lr = 1e-3});
        const Tensor x = tg::full({1, 5}, 50.0);
        const int iterations = rank > 0 ? 5 : 3;
        std::string before_join;
        {
            dist::Join join(ddp, {.divide_by_initial_world_size = by_initial_world_size});
            for (int i = 0; i < iterations; ++i) {
                Tensor loss = ddp.forward(x).sum();
                optimizer.zero_grad();
                loss.backward();
                ddp.synchronize();
                const int training = i < 3 ? world : world - 1;
                const double expected = by_initial_world_size ? 50.0 * training / world : 50.0;
                CAPTURE(i);
                for (float g : model->weight.grad().to_vector<float>()) CHECK(g == doctest::Approx(expected));
                optimizer.step();
            }
            before_join = raw_bytes(model->parameters());
            join.join();
        }
        // Every rank ends with the model of the last rank to join, which took 5 steps.
        const std::vector<std::string> all = group().all_gather(raw_bytes(model->parameters()));
        for (const std::string& other : all) CHECK(other == all.back());
        if (rank == world - 1) CHECK(raw_bytes(model->parameters()) == before_join);
        if (rank == 0 && world > 1) CHECK(raw_bytes(model->parameters()) != before_join);
    }
}

// Rank r has 1 + 2r batches and a model whose first layer is BatchNorm2d, whose running
// statistics depend on the inputs only. Inside a Join the buffers come from the highest rank
// still training, so the last rank's statistics are those of its own batches in turn; had they
// come from rank 0 after it joined, its stale statistics would have replaced them.
TEST_CASE("join_takes_the_buffers_from_a_rank_still_training") {
    const int world = group().size(), rank = group().rank();
    auto make_model = [](uint64_t seed) {
        tg::Generator gen(seed);
        return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
            std::make_shared<nn::BatchNorm2d>(1), std::make_shared<nn::Flatten>(),
            std::make_shared<nn::Linear>(64, 3, gen)});
    };
    auto model = make_model(1);
    dist::DistributedDataParallel ddp(model);
    nn::SGD optimizer(ddp.parameters(), {.lr = 0.1});
    const int64_t batch = 4;
    const auto batches_of = [&](int r) { return 1 + 2 * static_cast<int64_t>(r); };
    const Data mine = make_data(batch * batches_of(rank), 50 + static_cast<uint64_t>(rank));
    {
        dist::Join join(ddp);
        for (int64_t b = 0; b < batches_of(rank); ++b) {
            const auto [x, y] = rows_of(mine, b * batch, batch);
            train_step(ddp, optimizer, x, y);
        }
        join.join();
    }
    auto reference = make_model(1);
    const int last = world - 1;
    const Data theirs = make_data(batch * batches_of(last), 50 + static_cast<uint64_t>(last));
    {
        tg::NoGradGuard no_grad;
        for (int64_t b = 0; b < batches_of(last); ++b) reference->forward(rows_of(theirs, b * batch, batch).first);
    }
    const auto got = model->named_buffers();
    const auto want = reference->named_buffers();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(got[i].first);
        CHECK(worst_relative_error(got[i].second, want[i].second) < 1e-6);
    }
}

TEST_CASE("join_with_throw_on_early_termination_stops_every_rank") {
    const int world = group().size(), rank = group().rank();
    tg::Generator gen(2);
    auto model = std::make_shared<nn::Linear>(4, 2, gen);
    dist::DistributedDataParallel ddp(model);
    nn::SGD optimizer(ddp.parameters(), {.lr = 0.1});
    tg::Generator data_gen(4);
    const Tensor x = tg::randn({3, 4}, data_gen);
    const std::vector<int64_t> y{0, 1, 1};
    std::string message;
    try {
        dist::Join join(ddp, {.throw_on_early_termination = true});
        for (int i = 0; i < 1 + rank; ++i) train_step(ddp, optimizer, x, y);
        join.join();
    } catch (const std::runtime_error& e) {
        message = e.what();
    }
    CAPTURE(message);
    const std::string first_out = "rank 0 of " + std::to_string(world) + " ran out of inputs";
    if (world == 1) CHECK(message.empty());  // nobody else to stop
    else if (rank == 0) CHECK(contains(message, first_out + " while other ranks still train"));
    else CHECK(contains(message, first_out + " and asked for throw_on_early_termination"));
    // Every rank stopped at the same place: the group goes on working.
    std::vector<double> one{1.0};
    group().all_reduce_sum(one);
    CHECK(one[0] == world);
    // SyncBatchNorm's collectives cannot be shadowed: a Join needs throw_on_early_termination.
    dist::DistributedDataParallel with_sync_bn(make_bn_model(1, Norm::Sync, 0.0));
    CHECK_THROWS_WITH_AS(dist::Join{with_sync_bn}, doctest::Contains("SyncBatchNorm layer ('1')"),
                         std::invalid_argument);
    CHECK_NOTHROW(dist::Join(with_sync_bn, {.throw_on_early_termination = true}).join());
}
