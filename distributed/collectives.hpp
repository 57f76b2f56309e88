#pragma once
// What runs under every collective of a ProcessGroup; internal to distributed/ (it includes mpi.h).
//
// A collective is a non-blocking MPI call on its channel's communicator, waited for by polling
// against the group's deadline. While it polls, a rank also serves a control communicator:
//   - exit notices: a rank that reaches the end of the program tells every other how many
//     collectives it issued on each channel, so a rank that waits in a later one knows at once
//     that it can never complete;
//   - status queries: a rank whose collective timed out asks the others what they are waiting
//     in, so that its error says which ranks did not arrive and where they are instead;
//   - in debug mode, each collective's description, compared on every rank before it is issued.
#include <mpi.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "distributed/process_group.hpp"

namespace tapegrad::distributed::detail {

using IssueFn = std::function<void(MPI_Comm comm, MPI_Request* request)>;

// One collective, from its start to its completion.
struct Pending {
    Channel channel = Channel::User;
    int64_t sequence = 0;  // 1-based, among the collectives of its channel
    std::string what;      // "all_reduce_sum of 3 float64 values"
    IssueFn issue;
    std::shared_ptr<void> keep_alive;  // what MPI reads and writes until the request completes
    MPI_Request request = MPI_REQUEST_NULL;
    bool issued = false;
    bool finished = false;
    // Debug mode: every rank's description of its collective at this place, received before it
    // is issued.
    std::vector<char> records;
    std::vector<MPI_Request> record_requests;
};

class Engine {
public:
    // Collective over MPI_COMM_WORLD (it duplicates it once per channel).
    Engine(int rank, int size, const ProcessGroupOptions& options);

    ProcessGroupOptions options;

    // Starts a collective (in debug mode: starts exchanging its description, and issues it once
    // every rank's matches). Throws std::runtime_error when the group is broken or a rank that
    // exited will never take part.
    std::shared_ptr<Pending> start(Channel channel, std::string what, std::shared_ptr<void> keep_alive,
                                   IssueFn issue);
    // Moves it forward; true once it has completed on this rank.
    bool test(const std::shared_ptr<Pending>& pending);
    // Until it completes; std::runtime_error past the deadline or when a rank that must take part
    // has exited. Either leaves the group broken: MPI may still use the buffers of collectives in
    // flight, which are kept alive, and later collectives throw at once.
    void wait(const std::shared_ptr<Pending>& pending);

    // Why the group refuses collectives; empty while it works.
    const std::string& broken() const { return broken_; }
    // At the end of the program: tells the other ranks, waits for all of them (bounded by the
    // timeout) and finalises MPI. Returns an empty string, or why the job must be aborted instead.
    std::string leave_together();

private:
    struct PeerExit {
        bool exited = false;
        std::vector<int64_t> issued;  // per channel
    };
    struct Outgoing {
        MPI_Request request = MPI_REQUEST_NULL;
        std::vector<char> bytes;
    };
    struct Reply {
        bool answered = false;
        int channel = -1;  // -1: not in a collective
        int64_t sequence = 0;
        std::string doing;
    };

    std::string rank_text() const;
    std::string position(const Pending& p) const;
    void issue(const std::shared_ptr<Pending>& pending);
    void advance_checks(Channel channel);
    void post_records(Pending& p);
    std::string compare_records(const Pending& p) const;
    void send(int peer, int tag, std::vector<char> bytes);
    void serve_control(std::vector<Reply>* replies);
    int exited_peer_missing(const Pending& p) const;
    std::vector<Reply> query_peers();
    [[noreturn]] void fail(const std::string& message);
    [[noreturn]] void fail_peer_exited(const Pending& p, int peer);
    [[noreturn]] void fail_timeout(Pending& p);
    void pause(double waited_seconds) const;

    int rank_, size_;
    std::vector<MPI_Comm> channels_;
    MPI_Comm control_ = MPI_COMM_NULL;
    std::vector<int64_t> started_, issued_;  // per channel; issued_ also counts the collectives
                                             // that the debug check refused on every rank
    std::vector<PeerExit> exits_;
    std::string broken_;
    std::vector<std::deque<std::shared_ptr<Pending>>> checking_;  // debug mode, per channel
    std::vector<std::shared_ptr<Pending>> in_flight_;
    std::deque<Outgoing> outgoing_;
    const Pending* waiting_in_ = nullptr;  // what this rank answers to status queries
};

// MPI counts are ints: a larger message is refused here rather than truncated.
int mpi_count(int64_t n, const char* what);
// Bool and bfloat16 elements have no MPI arithmetic type; their bits travel as bytes and 16-bit
// words (broadcast, gather), and the sums refuse them before they get here.
inline MPI_Datatype mpi_type(DType dtype) {
    switch (dtype) {
        case kFloat32: return MPI_FLOAT;
        case kFloat64: return MPI_DOUBLE;
        case kInt64: return MPI_INT64_T;
        case kInt32: return MPI_INT32_T;
        case kBool: return MPI_UINT8_T;
        case kBFloat16: return MPI_UINT16_T;
    }
    return MPI_DATATYPE_NULL;
}

}  // namespace tapegrad::distributed::detail
