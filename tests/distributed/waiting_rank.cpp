// Jobs in which a rank waits in a collective that the other does not issue, under a short
// collective timeout (TAPEGRAD_COLLECTIVE_TIMEOUT=2 from ctest). ctest checks that the timeout
// ends the job with an error naming the collective and what the other rank is doing.
//   waiting_rank late     rank 1 sleeps for a minute before a barrier that rank 0 waits in
//   waiting_rank uneven   rank 1 has one batch more than rank 0, without a Join: rank 0 goes on
//                         to reduce its metrics while rank 1 waits for its gradients
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "distributed/data_parallel.hpp"
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
        tg::Generator gen(0);
        auto model = std::make_shared<nn::Linear>(8, 2, gen);
        dist::DistributedDataParallel ddp(model);
        nn::SGD optimizer(ddp.parameters(), {.lr = 0.1});
        double loss_sum = 0;
        for (int step = 0; step < 2 + group.rank(); ++step) {
            tg::Tensor loss = ddp.forward(tg::randn({4, 8}, gen)).sum();
            optimizer.zero_grad();
            loss.backward();
            ddp.synchronize();
            optimizer.step();
            loss_sum += loss.item();
        }
        std::vector<double> metrics{loss_sum, 2.0 + group.rank()};
        group.all_reduce_sum(metrics);
    }
    std::cout << "rank " << group.rank() << " finished\n";
    return 0;
}
