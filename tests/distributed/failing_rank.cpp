// A job in which rank 1 stops in the middle of training while rank 0 waits for its gradients.
// ctest runs it under mpirun and checks that the job ends promptly, with a non-zero exit code and
// a message from every rank.
//   failing_rank uncaught      rank 1 throws out of main (the terminate handler aborts the job)
//   failing_rank caught        rank 1 catches the error and calls ProcessGroup::abort
//   failing_rank exit_status   rank 1 catches the error and returns 3 from main
//   failing_rank std_exit      rank 1 calls std::exit(0) (rank 0 learns that it left)
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

#include "distributed/data_parallel.hpp"
#include "tapegrad.hpp"

namespace tg = tapegrad;
namespace nn = tapegrad::nn;
namespace dist = tapegrad::distributed;

void train(dist::DistributedDataParallel& ddp, nn::Optimizer& optimizer, const std::string& mode) {
    tg::Generator gen(ddp.group().rank());
    for (int step = 0; step < 5; ++step) {
        if (ddp.group().rank() == 1 && step == 3) {
            if (mode == "std_exit") std::exit(0);
            throw std::runtime_error("simulated failure at step 3");
        }
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
    if (mode == "uncaught" || mode == "std_exit") {
        train(ddp, optimizer, mode);
    } else {
        try {
            train(ddp, optimizer, mode);
        } catch (const std::exception& e) {
            if (mode == "caught") group.abort(e.what());
            std::cerr << "rank " << group.rank() << ": " << e.what() << "; returning 3\n";
            return 3;
        }
    }
    std::cout << "rank " << group.rank() << " finished\n";
    return 0;
}
