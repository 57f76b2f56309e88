// Data-parallel training over MPI. ctest runs each case under `mpirun -np 2`; run alone (a world of
// one) the cases still pass, and the sampler is also checked for every world size in-process.
#include <set>

#include "distributed/sampler.hpp"
#include "tests/distributed/distributed_helpers.hpp"

using namespace distributed_test;

namespace {

// Checks every rank's shard for one epoch: sizes, disjointness and coverage.
void check_shards(const std::vector<std::vector<int64_t>>& shards, int64_t dataset_size, dist::Remainder remainder) {
    const auto replicas = static_cast<int64_t>(shards.size());
    std::multiset<int64_t> all;
    for (const auto& shard : shards) all.insert(shard.begin(), shard.end());
    const std::set<int64_t> distinct(all.begin(), all.end());
    for (int64_t item : distinct) REQUIRE((item >= 0 && item < dataset_size));
    switch (remainder) {
    case dist::Remainder::Pad:
        for (const auto& shard : shards) CHECK(static_cast<int64_t>(shard.size()) == (dataset_size + replicas - 1) / replicas);
        CHECK(static_cast<int64_t>(distinct.size()) == dataset_size);  // covers
        // Only the padding repeats items: at most replicas - 1 of them.
        CHECK(static_cast<int64_t>(all.size()) - dataset_size < replicas);
        break;
    case dist::Remainder::Drop:
        for (const auto& shard : shards) CHECK(static_cast<int64_t>(shard.size()) == dataset_size / replicas);
        CHECK(all.size() == distinct.size());  // disjoint
        CHECK(static_cast<int64_t>(distinct.size()) == dataset_size / replicas * replicas);
        break;
    case dist::Remainder::Uneven:
        CHECK(all.size() == distinct.size());                           // disjoint
        CHECK(static_cast<int64_t>(distinct.size()) == dataset_size);  // covers
        for (const auto& shard : shards) {
            const auto n = static_cast<int64_t>(shard.size());
            CHECK((n == dataset_size / replicas || n == dataset_size / replicas + 1));
        }
        break;
    }
}

std::vector<int64_t> shard_of(int replicas, int rank, int64_t dataset_size, dist::SamplerOptions options, int64_t epoch) {
    dist::DistributedSampler sampler(replicas, rank, options);
    sampler.set_epoch(epoch);
    std::vector<int64_t> shard = sampler.indices(dataset_size);
    CHECK(static_cast<int64_t>(shard.size()) == sampler.size(dataset_size));
    return shard;
}


}  // namespace

TEST_CASE("sampler_shards_disjoint_and_covering_for_every_world_size") {
    for (int replicas = 1; replicas <= 5; ++replicas)
        for (int64_t size : {1, 2, 7, 10, 12, 13, 101})
            for (dist::Remainder remainder : {dist::Remainder::Pad, dist::Remainder::Drop, dist::Remainder::Uneven})
                for (bool shuffle : {true, false}) {
                    CAPTURE(replicas);
                    CAPTURE(size);
                    CAPTURE(static_cast<int>(remainder));
                    std::vector<std::vector<int64_t>> shards;
                    for (int r = 0; r < replicas; ++r)
                        shards.push_back(shard_of(replicas, r, size, {.shuffle = shuffle, .seed = 7, .remainder = remainder}, 3));
                    check_shards(shards, size, remainder);
                }
}

TEST_CASE("sampler_reshuffles_each_epoch_from_the_shared_seed") {
    const auto e0 = shard_of(2, 0, 1000, {.seed = 5}, 0);
    CHECK(e0 == shard_of(2, 0, 1000, {.seed = 5}, 0));  // same seed and epoch, same shard
    CHECK(e0 != shard_of(2, 0, 1000, {.seed = 5}, 1));  // a new epoch reshuffles
    CHECK(e0 != shard_of(2, 0, 1000, {.seed = 6}, 0));
    CHECK(shard_of(2, 1, 5, {.shuffle = false}, 0) == std::vector<int64_t>{1, 3, 0});  // pads from the start
    CHECK_THROWS_AS(dist::DistributedSampler(2, 2), std::invalid_argument);
    CHECK_THROWS_AS(dist::DistributedSampler(0, 0), std::invalid_argument);
}

TEST_CASE("sampler_shards_across_real_ranks") {
    // Each rank computes only its own shard; gathering them shows what the job really trains on.
    for (int64_t size : {10, 11}) {  // even and uneven for 2 ranks
        for (dist::Remainder remainder : {dist::Remainder::Pad, dist::Remainder::Drop, dist::Remainder::Uneven}) {
            CAPTURE(size);
            auto sampler = std::make_shared<dist::DistributedSampler>(group().size(), group().rank(),
                                                                      dist::SamplerOptions{.seed = 1, .remainder = remainder});
            sampler->set_epoch(2);
            std::string mine;
            for (int64_t i : sampler->indices(size)) mine += std::to_string(i) + " ";
            std::vector<std::vector<int64_t>> shards;
            for (const std::string& text : group().all_gather(mine)) {
                std::vector<int64_t> shard;
                std::size_t pos = 0;
                while (pos < text.size()) {
                    std::size_t end = text.find(' ', pos);
                    shard.push_back(std::stoll(text.substr(pos, end - pos)));
                    pos = end + 1;
                }
                shards.push_back(shard);
            }
            check_shards(shards, size, remainder);
        }
    }
}

TEST_CASE("data_loader_follows_the_sampler") {
    nn::ImageDataset data;
    data.count = 9;
    data.rows = data.cols = 2;
    data.pixels.assign(36, 0);
    for (int64_t i = 0; i < 9; ++i) {
        data.labels.push_back(i);
        data.pixels[static_cast<std::size_t>(4 * i)] = static_cast<uint8_t>(i);
    }
    auto sampler = std::make_shared<dist::DistributedSampler>(2, 1, dist::SamplerOptions{.seed = 3});
    nn::DataLoader loader(data, {.batch_size = 2, .shuffle = false, .mean = 0.0, .std = 1.0, .sampler = sampler});
    CHECK(loader.num_items() == 5);
    CHECK(loader.num_batches() == 3);
    std::vector<int64_t> seen;
    for (const nn::Batch& b : loader) {
        const std::vector<int64_t> labels = b.labels.to_vector<int64_t>();
        seen.insert(seen.end(), labels.begin(), labels.end());
    }
    CHECK(seen == sampler->indices(9));
    CHECK_THROWS_AS(nn::DataLoader(data, {.shuffle = true, .sampler = sampler}), std::invalid_argument);
}

TEST_CASE("averaged_gradients_equal_the_gradients_of_the_concatenated_batch") {
    const int world = group().size(), rank = group().rank();
    const int64_t per_rank = 6;
    const Data data = make_data(per_rank * world, 42);
    for (bool overlap : {true, false})
        for (double cap_mb : {25.0, 1e-6}) {  // one bucket; one parameter per bucket
            CAPTURE(overlap);
            CAPTURE(cap_mb);
            // Different initial weights on every rank: the wrapper must broadcast rank 0's.
            auto model = make_plain_model(100 + static_cast<uint64_t>(rank));
            dist::DistributedDataParallel ddp(model, {.bucket_cap_mb = cap_mb, .overlap_with_backward = overlap});
            if (cap_mb < 1) CHECK(ddp.bucket_layout().size() == model->parameters().size());
            // The reference: one process, the same weights, every rank's rows at once.
            auto reference = make_plain_model(999);
            reference->load_state_dict(model->state_dict());
            const auto [all_x, all_y] = rows_of(data, 0, per_rank * world);
            tg::cross_entropy(reference->forward(all_x), all_y).backward();

            const auto [x, y] = rows_of(data, rank * per_rank, per_rank);
            tg::cross_entropy(ddp.forward(x), y).backward();
            ddp.synchronize();
            const auto mine = model->named_parameters();
            const auto want = reference->named_parameters();
            REQUIRE(mine.size() == want.size());
            for (std::size_t i = 0; i < mine.size(); ++i) {
                CAPTURE(mine[i].first);
                CHECK(worst_relative_error(mine[i].second.grad(), want[i].second.grad()) < 1e-4);
            }
        }
}

TEST_CASE("sync_batchnorm_over_ranks_equals_batchnorm_on_the_concatenated_batch") {
    const int world = group().size(), rank = group().rank();
    const int64_t per_rank = 5;
    const Data data = make_data(per_rank * world, 43);
    auto model = make_bn_model(1 + static_cast<uint64_t>(rank), Norm::Sync, 0.0);
    dist::DistributedDataParallel ddp(model);
    auto reference = make_bn_model(999, Norm::PerRank, 0.0);
    reference->load_state_dict(model->state_dict());
    const auto [all_x, all_y] = rows_of(data, 0, per_rank * world);
    const Tensor want_out = reference->forward(all_x);
    tg::cross_entropy(want_out, all_y).backward();

    const auto [x, y] = rows_of(data, rank * per_rank, per_rank);
    const Tensor out = ddp.forward(x);
    tg::cross_entropy(out, y).backward();
    ddp.synchronize();
    // This rank's rows of the output, the averaged gradients and the running statistics all
    // match one process's BatchNorm2d over every rank's rows.
    const std::vector<float> want_rows = want_out.contiguous().to_vector<float>();
    CHECK(worst_relative_error(out, tg::from_vector(std::vector<float>(want_rows.begin() + rank * per_rank * 3,
                                                                       want_rows.begin() + (rank + 1) * per_rank * 3),
                                                    {per_rank, 3})) < 1e-4);
    const auto mine = model->state_dict();
    const auto want = reference->state_dict();
    for (std::size_t i = 0; i < mine.size(); ++i) {
        CAPTURE(mine[i].first);
        CHECK(worst_relative_error(mine[i].second, want[i].second) < 1e-5);
    }
    const auto mine_params = model->named_parameters();
    const auto want_params = reference->named_parameters();
    for (std::size_t i = 0; i < mine_params.size(); ++i) {
        CAPTURE(mine_params[i].first);
        CHECK(worst_relative_error(mine_params[i].second.grad(), want_params[i].second.grad()) < 1e-4);
    }
}

TEST_CASE("overlapped_reduction_finishes_inside_backward") {
    // With the hooks, .grad() is averaged when backward returns; after backward without them it
    // is still this rank's own until synchronize().
    const int world = group().size(), rank = group().rank();
    const Data data = make_data(4 * world, 44);
    auto reference = make_plain_model(3);
    const auto [all_x, all_y] = rows_of(data, 0, 4 * world);
    tg::cross_entropy(reference->forward(all_x), all_y).backward();
    for (bool overlap : {true, false}) {
        CAPTURE(overlap);
        auto model = make_plain_model(3);
        dist::DistributedDataParallel ddp(model, {.bucket_cap_mb = 1e-6, .overlap_with_backward = overlap});
        const auto [x, y] = rows_of(data, rank * 4, 4);
        tg::cross_entropy(ddp.forward(x), y).backward();
        const Tensor first_weight = model->parameters()[0];
        const double before = worst_relative_error(first_weight.grad(), reference->parameters()[0].grad());
        if (overlap || world == 1) CHECK(before < 1e-4);
        else CHECK(before > 1e-3);
        if (!overlap) CHECK_THROWS_AS(ddp.forward(x), std::logic_error);  // synchronize() first
        ddp.synchronize();
        CHECK(worst_relative_error(first_weight.grad(), reference->parameters()[0].grad()) < 1e-4);
        CHECK(ddp.stats().rounds == 1);
        ddp.forward(x);  // allowed again
    }
}


// Rank 1 never uses the second head. Its gradient there counts as zeros, the job does not wait
// forever for a bucket that rank 1 never fills in backward, and both ranks end equal.
TEST_CASE("a_parameter_unused_on_one_rank_counts_as_zero_there") {
    const int world = group().size(), rank = group().rank();
    for (bool overlap : {true, false}) {
        CAPTURE(overlap);
        tg::Generator gen(5);
        auto model = std::make_shared<TwoHeads>(gen);
        model->use_second = rank == 0;
        dist::DistributedDataParallel ddp(model, {.bucket_cap_mb = 1e-6, .overlap_with_backward = overlap});
        tg::Generator data_gen(9);
        const Tensor x = tg::randn({3, 4}, data_gen);  // the same on every rank
        ddp.forward(x).sum().backward();
        ddp.synchronize();
        // d(sum)/d(bias) is 3 per output on the ranks that use the layer: every rank uses the
        // first head, only rank 0 the second.
        CHECK(model->first->bias.grad().to_vector<float>() == std::vector<float>{3.0f, 3.0f});
        const std::vector<float> second = model->second->bias.grad().to_vector<float>();
        CHECK(second[0] == doctest::Approx(3.0 / world));
        CHECK(second[1] == doctest::Approx(3.0 / world));
    }
}

TEST_CASE("parameters_stay_bit_identical_on_every_rank_after_training") {
    const int rank = group().rank();
    for (bool overlap : {true, false}) {
        CAPTURE(overlap);
        auto model = make_bn_model(7 + static_cast<uint64_t>(rank));
        dist::DistributedDataParallel ddp(model, {.bucket_cap_mb = 0.002, .overlap_with_backward = overlap});
        nn::AdamW optimizer(ddp.parameters(), {.lr = 1e-2, .weight_decay = 1e-2});
        const Data data = make_data(8, 1000 + static_cast<uint64_t>(rank));  // each rank its own data
        for (int step = 0; step < 8; ++step) {
            const auto [x, y] = rows_of(data, 0, 8);
            Tensor loss = tg::cross_entropy(ddp.forward(x), y);
            optimizer.zero_grad();
            loss.backward();
            ddp.synchronize();
            optimizer.step();
        }
        const std::vector<std::string> all = group().all_gather(raw_bytes(model->parameters()));
        for (std::size_t r = 1; r < all.size(); ++r) CHECK(all[r] == all[0]);
        // And they moved: the check above is not about untouched weights.
        CHECK(raw_bytes(model->parameters()) != raw_bytes(make_bn_model(7)->parameters()));
    }
}

TEST_CASE("a_model_that_differs_between_ranks_is_named_on_every_rank") {
    const int rank = group().rank();
    if (group().size() == 1) return;  // nothing can differ
    auto model = make_plain_model(1, rank == 1 ? 4 : 3);  // rank 1's last layer has 4 classes
    try {
        dist::DistributedDataParallel ddp(model);
        FAIL("no error");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        CHECK(what.find("'6.weight' float32 [3,8]") != std::string::npos);
        CHECK(what.find("rank 1 has parameter '6.weight' float32 [4,8]") != std::string::npos);
    }
}

TEST_CASE("a_world_of_one_or_more_is_consistent") {
    CHECK(group().size() >= 1);
    CHECK((group().rank() >= 0 && group().rank() < group().size()));
    std::vector<double> v{1.0, static_cast<double>(group().rank())};
    group().all_reduce_sum(v);
    const double n = group().size();
    CHECK(v[0] == n);
    CHECK(v[1] == n * (n - 1) / 2);
}
