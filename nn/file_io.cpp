#include "nn/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace tapegrad::nn::detail {
namespace {

[[noreturn]] void fail(const std::string& who, const std::string& problem) {
    throw std::runtime_error(who + ": " + problem);
}

// Closes the descriptor on every path out of a function.
class Descriptor {
public:
    explicit Descriptor(int fd) : fd_(fd) {}
    ~Descriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    int get() const { return fd_; }
    // Closes now (once) and returns close()'s errno, 0 when it succeeded: a failed close can mean lost data.
    int close() {
        if (fd_ < 0) return 0;
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc == 0 ? 0 : errno;
    }

private:
    int fd_;
};

// A name next to `target` that no other writer (thread or process) uses at the same time.
std::string temporary_name(const std::string& target) {
    static std::atomic<uint64_t> counter{0};
    return target + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

}  // namespace

std::vector<uint8_t> read_whole_file(const std::string& who, const std::string& path, std::size_t max_bytes,
                                     const std::string& limit_text) {
    // errno is saved at once: building the message may allocate, and allocation may change it.
    auto fail_errno = [&](const std::string& problem, int error) { fail(who, problem + ": " + std::strerror(error)); };
    // Checked before opening: opening a pipe would wait for a writer.
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        const int error = errno;
        fail_errno("cannot open " + path, error);
    }
    if (S_ISDIR(info.st_mode)) fail(who, path + " is a directory, not a file");
    if (!S_ISREG(info.st_mode)) fail(who, path + " is not a regular file (a device, pipe or socket)");
    Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        const int error = errno;
        fail_errno("cannot open " + path, error);
    }
    if (::fstat(fd.get(), &info) != 0) {
        const int error = errno;
        fail_errno("cannot read the size of " + path, error);
    }
    const auto size = static_cast<uint64_t>(info.st_size);
    if (size > max_bytes) fail(who, path + " is " + std::to_string(size) + " bytes, larger than " + limit_text);
    std::vector<uint8_t> bytes(static_cast<std::size_t>(size));
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int error = errno;
            fail_errno("cannot read " + path, error);
        }
        if (n == 0) break;  // the file shrank while being read: the parser sees what is there
        done += static_cast<std::size_t>(n);
    }
    bytes.resize(done);
    return bytes;
}

void write_file_atomically(const std::string& who, const std::string& path, std::string_view bytes) {
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) fail(who, path + " is a directory; give a file name");
    // Through a link, the file it points to is the one replaced, and the link stays.
    std::string target = path;
    if (::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) {
        if (char* real = ::realpath(path.c_str(), nullptr)) {
            target = real;
            std::free(real);
        }
    }
    const std::string tmp = temporary_name(target);
    Descriptor fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd.get() < 0) {
        const int error = errno;
        fail(who, "cannot write " + path + ": cannot create " + tmp + ": " + std::strerror(error));
    }
    auto give_up = [&](const std::string& problem, int error) {
        fd.close();
        ::unlink(tmp.c_str());
        fail(who, "writing " + path + " failed: " + problem + ": " + std::strerror(error) + " (" + path +
                      " is unchanged)");
    };
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int error = n < 0 ? errno : EIO;
            give_up("writing " + tmp, error);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
        const int error = errno;
        give_up("flushing " + tmp + " to disk", error);
    }
    if (const int error = fd.close(); error != 0) give_up("closing " + tmp, error);
    if (std::rename(tmp.c_str(), target.c_str()) != 0) {
        const int error = errno;
        give_up("renaming " + tmp + " to " + target, error);
    }
}

std::string shape_problem(const Shape& shape) {
    constexpr int64_t kMaxDim = int64_t{1} << 40;
    uint64_t extent = 1;
    for (int64_t dim : shape) {
        if (dim < 0 || dim > kMaxDim) return "has an invalid dimension " + std::to_string(dim);
        if (dim > 0 && extent > static_cast<uint64_t>(kMaxDim / dim))
            return "has dimensions " + tapegrad::to_string(shape) + " whose product is too large";
        extent *= static_cast<uint64_t>(std::max<int64_t>(dim, 1));
    }
    return "";
}

}  // namespace tapegrad::nn::detail
