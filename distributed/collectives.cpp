#include "distributed/collectives.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace tapegrad::distributed::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Control messages. Records travel with tag kRecordTag + channel, so that each channel's
// descriptions pair in order (MPI keeps the order of the messages of one sender and tag).
constexpr int kExitTag = 1, kQueryTag = 2, kReplyTag = 3, kRecordTag = 16;
constexpr std::size_t kTextSize = 256;
// A status query waits this long for the answers (or the timeout, when shorter).
constexpr double kQuerySeconds = 1.0;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::vector<char> fixed_text(const std::string& text) {
    std::vector<char> bytes(kTextSize, '\0');
    std::memcpy(bytes.data(), text.data(), std::min(text.size(), kTextSize - 1));
    return bytes;
}

std::string from_fixed(const char* bytes) { return {bytes, strnlen(bytes, kTextSize)}; }

std::string seconds_text(double seconds) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", seconds);
    return buf;
}

// "1", "1 and 2", "1, 2 and 3"
std::string rank_list(const std::vector<int>& ranks) {
    std::string out;
    for (std::size_t i = 0; i < ranks.size(); ++i) {
        if (i > 0) out += i + 1 == ranks.size() ? " and " : ", ";
        out += std::to_string(ranks[i]);
    }
    return out;
}

constexpr const char* kAdvice =
    "Every rank must issue the same collectives in the same order: a rank that runs out of data while others "
    "still train (uneven inputs) needs distributed::Join around the training loop, or a DistributedSampler with "
    "Remainder::Pad or Drop; a collective inside `if (rank == 0)` never completes. If a rank is only slow, raise "
    "TAPEGRAD_COLLECTIVE_TIMEOUT=<seconds> (or ProcessGroupOptions::timeout_seconds); "
    "TAPEGRAD_DISTRIBUTED_DEBUG=DETAIL checks every collective's order and names the first difference";

}  // namespace

int mpi_count(int64_t n, const char* what) {
    if (n < 0 || n > INT_MAX)
        throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) +
                                    " elements do not fit one MPI message (at most 2^31-1); use smaller buckets");
    return static_cast<int>(n);
}

Engine::Engine(int rank, int size, const ProcessGroupOptions& options)
    : options(options), rank_(rank), size_(size), channels_(kChannelCount), started_(kChannelCount, 0),
      issued_(kChannelCount, 0), exits_(static_cast<std::size_t>(size)), checking_(kChannelCount) {
    for (MPI_Comm& comm : channels_) MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    MPI_Comm_dup(MPI_COMM_WORLD, &control_);
}

std::string Engine::rank_text() const { return "rank " + std::to_string(rank_) + " of " + std::to_string(size_); }

std::string Engine::position(const Pending& p) const {
    return p.what + " (collective " + std::to_string(p.sequence) + " on the " + channel_name(p.channel) + " channel)";
}

std::shared_ptr<Pending> Engine::start(Channel channel, std::string what, std::shared_ptr<void> keep_alive,
                                       IssueFn issue_fn) {
    if (!broken_.empty())
        throw std::runtime_error("tapegrad.distributed: " + rank_text() + " cannot run " + what +
                                 ": an earlier collective failed, and the ranks no longer agree on which collective "
                                 "comes next (" + broken_ + "); end the job");
    auto p = std::make_shared<Pending>();
    const auto c = static_cast<std::size_t>(channel);
    p->channel = channel;
    p->sequence = ++started_[c];
    p->what = std::move(what);
    p->issue = std::move(issue_fn);
    p->keep_alive = std::move(keep_alive);
    if (const int peer = exited_peer_missing(*p); peer >= 0) fail_peer_exited(*p, peer);
    if (options.debug == DebugLevel::Detail && size_ > 1) {
        post_records(*p);
        checking_[c].push_back(p);
        advance_checks(channel);
    } else {
        issue(p);
    }
    return p;
}

void Engine::issue(const std::shared_ptr<Pending>& p) {
    p->issue(channels_[static_cast<std::size_t>(p->channel)], &p->request);
    p->issued = true;
    ++issued_[static_cast<std::size_t>(p->channel)];
    in_flight_.push_back(p);
}

void Engine::post_records(Pending& p) {
    const int tag = kRecordTag + static_cast<int>(p.channel);
    p.records.assign(kTextSize * static_cast<std::size_t>(size_), '\0');
    const std::vector<char> mine = fixed_text(p.what);
    std::copy(mine.begin(), mine.end(), p.records.begin() + static_cast<std::ptrdiff_t>(kTextSize) * rank_);
    p.record_requests.assign(static_cast<std::size_t>(size_), MPI_REQUEST_NULL);
    for (int peer = 0; peer < size_; ++peer) {
        if (peer == rank_) continue;
        send(peer, tag, mine);
        MPI_Irecv(p.records.data() + kTextSize * static_cast<std::size_t>(peer), static_cast<int>(kTextSize), MPI_CHAR,
                  peer, tag, control_, &p.record_requests[static_cast<std::size_t>(peer)]);
    }
}

// Issues the channel's checked collectives in order, as soon as every rank's description of the
// first has arrived; throws on the first that differs.
void Engine::advance_checks(Channel channel) {
    auto& queue = checking_[static_cast<std::size_t>(channel)];
    while (!queue.empty()) {
        const std::shared_ptr<Pending> head = queue.front();
        int all_arrived = 0;
        MPI_Testall(static_cast<int>(head->record_requests.size()), head->record_requests.data(), &all_arrived,
                    MPI_STATUSES_IGNORE);
        if (!all_arrived) return;
        queue.pop_front();
        const std::string mismatch = compare_records(*head);
        if (!mismatch.empty()) {
            // Every rank refuses it, so every rank skips this place and the next ones still pair.
            ++issued_[static_cast<std::size_t>(channel)];
            head->finished = true;
            throw std::runtime_error(mismatch);
        }
        issue(head);
    }
}

// Rank 0's description against each other rank's: the same message on every rank.
std::string Engine::compare_records(const Pending& p) const {
    const std::string first = from_fixed(p.records.data());
    for (int r = 1; r < size_; ++r) {
        const std::string other = from_fixed(p.records.data() + kTextSize * static_cast<std::size_t>(r));
        if (other == first) continue;
        return "tapegrad.distributed: collective " + std::to_string(p.sequence) + " on the " +
               channel_name(p.channel) + " channel differs between ranks: rank 0 issues " + first + ", rank " +
               std::to_string(r) + " issues " + other +
               " (TAPEGRAD_DISTRIBUTED_DEBUG=DETAIL checked it before running it). " + kAdvice;
    }
    return {};
}

bool Engine::test(const std::shared_ptr<Pending>& p) {
    if (p->finished) return true;
    if (!p->issued) advance_checks(p->channel);
    if (!p->issued) return false;
    int done = 0;
    MPI_Test(&p->request, &done, MPI_STATUS_IGNORE);
    if (done) {
        p->finished = true;
        in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), p));
    }
    return done != 0;
}

void Engine::wait(const std::shared_ptr<Pending>& p) {
    const auto start = Clock::now();
    waiting_in_ = p.get();
    struct Clear {
        const Pending*& slot;
        ~Clear() { slot = nullptr; }
    } clear{waiting_in_};
    while (!test(p)) {
        serve_control(nullptr);
        if (const int peer = exited_peer_missing(*p); peer >= 0) fail_peer_exited(*p, peer);
        const double waited = seconds_since(start);
        if (waited > options.timeout_seconds) fail_timeout(*p);
        pause(waited);
    }
}

// OpenMPI's own blocking waits spin; on a machine with fewer cores than ranks a spinning rank
// takes the core the others need, so a long wait yields and then sleeps between polls.
void Engine::pause(double waited_seconds) const {
    if (waited_seconds < 0.005) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(200));
}

void Engine::send(int peer, int tag, std::vector<char> bytes) {
    Outgoing& out = outgoing_.emplace_back();
    out.bytes = std::move(bytes);
    MPI_Isend(out.bytes.data(), static_cast<int>(out.bytes.size()), MPI_CHAR, peer, tag, control_, &out.request);
}

void Engine::serve_control(std::vector<Reply>* replies) {
    for (;;) {
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, kExitTag, control_, &flag, &status);
        if (flag) {
            PeerExit& peer = exits_[static_cast<std::size_t>(status.MPI_SOURCE)];
            peer.issued.assign(kChannelCount, 0);
            const int bytes = static_cast<int>(sizeof(int64_t) * kChannelCount);
            MPI_Recv(peer.issued.data(), bytes, MPI_CHAR, status.MPI_SOURCE, kExitTag, control_, MPI_STATUS_IGNORE);
            peer.exited = true;
            continue;
        }
        MPI_Iprobe(MPI_ANY_SOURCE, kQueryTag, control_, &flag, &status);
        if (flag) {
            char ignored = 0;
            MPI_Recv(&ignored, 1, MPI_CHAR, status.MPI_SOURCE, kQueryTag, control_, MPI_STATUS_IGNORE);
            const std::string answer =
                waiting_in_ ? std::to_string(static_cast<int>(waiting_in_->channel)) + " " +
                                  std::to_string(waiting_in_->sequence) + " waiting in " + position(*waiting_in_)
                            : "-1 0 at the end of the program, waiting for the other ranks to get there";
            send(status.MPI_SOURCE, kReplyTag, fixed_text(answer));
            continue;
        }
        MPI_Iprobe(MPI_ANY_SOURCE, kReplyTag, control_, &flag, &status);
        if (flag) {
            std::vector<char> text(kTextSize);
            MPI_Recv(text.data(), static_cast<int>(kTextSize), MPI_CHAR, status.MPI_SOURCE, kReplyTag, control_,
                     MPI_STATUS_IGNORE);
            if (replies) {
                Reply& reply = (*replies)[static_cast<std::size_t>(status.MPI_SOURCE)];
                const std::string answer = from_fixed(text.data());
                long long sequence = 0;
                int consumed = 0;
                std::sscanf(answer.c_str(), "%d %lld %n", &reply.channel, &sequence, &consumed);
                reply.sequence = sequence;
                reply.doing = answer.substr(static_cast<std::size_t>(consumed));
                reply.answered = true;
            }
            continue;
        }
        break;
    }
    while (!outgoing_.empty()) {
        int done = 0;
        MPI_Test(&outgoing_.front().request, &done, MPI_STATUS_IGNORE);
        if (!done) break;
        outgoing_.pop_front();
    }
}

// A rank that exited before issuing this collective, or -1.
int Engine::exited_peer_missing(const Pending& p) const {
    for (int r = 0; r < size_; ++r) {
        const PeerExit& peer = exits_[static_cast<std::size_t>(r)];
        if (peer.exited && peer.issued[static_cast<std::size_t>(p.channel)] < p.sequence) return r;
    }
    return -1;
}

void Engine::fail(const std::string& message) {
    broken_ = message;
    throw std::runtime_error(message);
}

void Engine::fail_peer_exited(const Pending& p, int peer) {
    const int64_t issued = exits_[static_cast<std::size_t>(peer)].issued[static_cast<std::size_t>(p.channel)];
    fail("tapegrad.distributed: " + rank_text() + ": rank " + std::to_string(peer) +
         " reached the end of the program after issuing " + std::to_string(issued) + " collectives on the " +
         channel_name(p.channel) + " channel, so " + position(p) + " can never complete. " + kAdvice);
}

std::vector<Engine::Reply> Engine::query_peers() {
    std::vector<Reply> replies(static_cast<std::size_t>(size_));
    for (int peer = 0; peer < size_; ++peer)
        if (peer != rank_) send(peer, kQueryTag, {0});
    const auto start = Clock::now();
    const double limit = std::min(kQuerySeconds, options.timeout_seconds);
    for (;;) {
        serve_control(&replies);
        int answered = 1;
        for (const Reply& r : replies) answered += r.answered ? 1 : 0;
        const double waited = seconds_since(start);
        if (answered == size_ || waited > limit) break;
        pause(waited);
    }
    return replies;
}

void Engine::fail_timeout(Pending& p) {
    std::string message = "tapegrad.distributed: " + rank_text() + ": " + position(p) + " did not complete within " +
                          seconds_text(options.timeout_seconds) + ".";
    const std::vector<Reply> replies = query_peers();
    std::vector<int> absent;
    for (int r = 0; r < size_; ++r) {
        if (r == rank_) continue;
        const Reply& reply = replies[static_cast<std::size_t>(r)];
        const bool arrived = reply.answered && reply.channel == static_cast<int>(p.channel) &&
                             reply.sequence >= p.sequence;
        if (arrived) continue;
        absent.push_back(r);
        message += reply.answered ? " Rank " + std::to_string(r) + " is " + reply.doing + "."
                                  : " Rank " + std::to_string(r) + " did not answer within " +
                                        seconds_text(std::min(kQuerySeconds, options.timeout_seconds)) +
                                        ": it is not waiting in a collective (still computing, or stuck outside "
                                        "tapegrad.distributed).";
    }
    if (!p.issued && size_ > 1) {
        std::vector<int> silent;
        for (int r = 0; r < size_; ++r) {
            int arrived = 0;
            MPI_Test(&p.record_requests[static_cast<std::size_t>(r)], &arrived, MPI_STATUS_IGNORE);
            if (!arrived) silent.push_back(r);
        }
        if (!silent.empty())
            message += " No description of it came from rank " + rank_list(silent) +
                       " (TAPEGRAD_DISTRIBUTED_DEBUG must be DETAIL on every rank).";
    }
    message += absent.empty() ? " Every rank has reached it; the transport is stuck."
                              : " Did not arrive: rank " + rank_list(absent) + ".";
    fail(message + " " + kAdvice);
}

std::string Engine::leave_together() {
    if (size_ > 1) {
        std::vector<char> notice(sizeof(int64_t) * kChannelCount);
        std::memcpy(notice.data(), issued_.data(), notice.size());
        for (int peer = 0; peer < size_; ++peer)
            if (peer != rank_) send(peer, kExitTag, notice);
        MPI_Request barrier = MPI_REQUEST_NULL;
        MPI_Ibarrier(control_, &barrier);
        const auto start = Clock::now();
        bool together = false;
        while (!together) {
            if (barrier != MPI_REQUEST_NULL) {
                int done = 0;
                MPI_Test(&barrier, &done, MPI_STATUS_IGNORE);
            }
            serve_control(nullptr);
            const auto peers_done = std::count_if(exits_.begin(), exits_.end(), [](const PeerExit& e) { return e.exited; });
            together = barrier == MPI_REQUEST_NULL && peers_done == size_ - 1 && outgoing_.empty();
            const double waited = seconds_since(start);
            if (!together && waited > options.timeout_seconds) {
                std::vector<int> missing;
                for (int r = 0; r < size_; ++r)
                    if (r != rank_ && !exits_[static_cast<std::size_t>(r)].exited) missing.push_back(r);
                return "reached the end of the program, but rank " + rank_list(missing) + " did not within " +
                       seconds_text(options.timeout_seconds) +
                       " (TAPEGRAD_COLLECTIVE_TIMEOUT); every rank must reach it, and issue the same collectives "
                       "on the way";
            }
            pause(waited);
        }
    }
    MPI_Finalize();
    return {};
}

}  // namespace tapegrad::distributed::detail
