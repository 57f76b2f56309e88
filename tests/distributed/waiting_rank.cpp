// Jobs in which a rank waits in a collective that the other does not issue, under a short
// collective timeout (TAPEGRAD_COLLECTIVE_TIMEOUT=2 from ctest). ctest checks that the timeout
// ends the job with an error naming the collective and what the other rank is doing.
//   waiting_rank late     rank 1 sleeps for a minute before a barrier that rank 0 waits in
//   waiting_rank uneven   rank 1 has one batch more than rank 0, without a Join: rank 0 goes on
//                         to reduce its metric while rank 1 waits for its gradients
//   waiting_rank uneven_sync_batch_norm
//                         the same with a SyncBatchNorm layer: rank 1 waits in its statistics'
//                         first all-reduce, of one value like rank 0's metric (on one shared
//                         communicator the two would pair, each returning the other's number)
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "distributed/data_parallel.hpp"
#include "distributed/sync_batch_norm.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace dist = tapegrad::distributed;

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "late";
    tg::set_num_threads(1);
    dist::ProcessGroup& group = dist::ProcessGroup::world();
    if (mode == "late") {
        if (group.rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
        group.barrier();
    } else {
        const bool sync_batch_norm = mode == "uneven_sync_batch_norm";
        tg::Generator gen(0);
        std::shared_ptr<nn::Module> model = std::make_shared<nn::Sequential>(
            std::initializer_list<std::shared_ptr<nn::Module>>{std::make_shared<nn::Flatten>(),
                                                                std::make_shared<nn::Linear>(8, 2, gen)});
        if (sync_batch_norm)
            model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                std::make_shared<dist::SyncBatchNorm>(2), std::make_shared<nn::Flatten>(),
                std::make_shared<nn::Linear>(8, 2, gen)});
        // Without the buffer broadcast, the first collective of a step is SyncBatchNorm's.
        dist::DistributedDataParallel ddp(model, {.broadcast_buffers = false});
        nn::SGD optimizer(ddp.parameters(), {.lr = 0.1});
        std::vector<double> steps{0.0};
        for (int step = 0; step < 2 + group.rank(); ++step) {
            tg::Tensor loss = ddp.forward(tg::randn({4, 2, 2, 2}, gen)).sum();
            optimizer.zero_grad();
            loss.backward();
            ddp.synchronize();
            optimizer.step();
            steps[0] += 1;
        }
        group.all_reduce_sum(steps);
        std::cout << "rank " << group.rank() << ": " << steps[0] << " steps in all\n";
    }
    std::cout << "rank " << group.rank() << " finished\n";
    return 0;
}
