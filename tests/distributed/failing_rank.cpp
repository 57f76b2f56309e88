// A job in which rank 1 fails in the middle of training while rank 0 waits for its gradients.
// ctest runs it under mpirun and checks that the job ends promptly, with a non-zero exit code and
// a message from every rank.
//   failing_rank uncaught   rank 1 throws out of main (the terminate handler aborts the job)
//   failing_rank caught     rank 1 catches the error and calls ProcessGroup::abort
#include <iostream>
#include <stdexcept>
#include <string>

#include "distributed/data_parallel.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace dist = tapegrad::distributed;

void train(dist::DistributedDataParallel& ddp, nn::Optimizer& optimizer) {
    tg::Generator gen(ddp.group().rank());
    for (int step = 0; step < 5; ++step) {
        if (ddp.group().rank() == 1 && step == 3) throw std::runtime_error("simulated failure at step 3");
        tg::Tensor loss = ddp.forward(tg::randn({4, 8}, gen)).sum();
        optimizer.zero_grad();
        loss.backward();
        ddp.synchronize();  // rank 0 waits here for rank 1, which never comes
        optimizer.step();
    }
}

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "uncaught";
    tg::set_num_threads(1);
    dist::ProcessGroup& group = dist::ProcessGroup::world();
    tg::Generator gen(0);
    auto model = std::make_shared<nn::Linear>(8, 2, gen);
    dist::DistributedDataParallel ddp(model);
    nn::SGD optimizer(ddp.parameters(), {.lr = 0.1});
    if (mode == "uncaught") {
        train(ddp, optimizer);
    } else {
        try {
            train(ddp, optimizer);
        } catch (const std::exception& e) {
            group.abort(e.what());
        }
    }
    std::cout << "rank " << group.rank() << " finished\n";
    return 0;
}
