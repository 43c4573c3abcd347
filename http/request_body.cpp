#include "http/request_body.hpp"

#include <cerrno>
#include <cstdlib>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace gantry {

namespace {

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// An anonymous file in $TMPDIR (or /tmp): O_TMPFILE where the filesystem has it, else mkstemp+unlink.
int open_anonymous_file() {
    const char* dir = std::getenv("TMPDIR");
    std::string base = (dir && *dir) ? dir : "/tmp";
    int fd = ::open(base.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    std::string path = base + "/gantry-body-XXXXXX";
    fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) throw_errno("request body temporary file");
    ::unlink(path.c_str());
    return fd;
}

void write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("request body temporary file");
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

RequestBody::RequestBody(RequestBody&& other) noexcept
    : memory_limit_(other.memory_limit_),
      size_(std::exchange(other.size_, 0)),
      memory_(std::move(other.memory_)),
      fd_(std::exchange(other.fd_, -1)) {}

RequestBody& RequestBody::operator=(RequestBody&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        memory_limit_ = other.memory_limit_;
        size_ = std::exchange(other.size_, 0);
        memory_ = std::move(other.memory_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

RequestBody::~RequestBody() {
    if (fd_ >= 0) ::close(fd_);
}

void RequestBody::append(std::string_view bytes) {
    if (bytes.empty()) return;
    if (fd_ < 0 && memory_.size() + bytes.size() > memory_limit_) spill();
    if (fd_ >= 0) {
        // Writes go at the end; readers get the file rewound (pread-free: positioned at 0 below).
        off_t end = static_cast<off_t>(size_);
        if (::lseek(fd_, end, SEEK_SET) < 0) throw_errno("request body temporary file");
        write_all(fd_, bytes);
        if (::lseek(fd_, 0, SEEK_SET) < 0) throw_errno("request body temporary file");
    } else {
        memory_.append(bytes);
    }
    size_ += bytes.size();
}

void RequestBody::spill() {
    int fd = open_anonymous_file();
    try {
        write_all(fd, memory_);
    } catch (...) {
        ::close(fd);
        throw;
    }
    fd_ = fd;
    std::string().swap(memory_);
    if (::lseek(fd_, 0, SEEK_SET) < 0) throw_errno("request body temporary file");
}

std::string RequestBody::contents() const {
    if (fd_ < 0) return memory_;
    std::string out(size_, '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) errno = EIO;  // the file is shorter than the body written to it
        if (n <= 0) throw_errno("request body temporary file");
        done += static_cast<std::size_t>(n);
    }
    return out;
}

int RequestBody::release_file() {
    return std::exchange(fd_, -1);
}

}  // namespace gantry
