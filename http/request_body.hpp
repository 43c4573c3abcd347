#pragma once
// A request body, read completely by the I/O thread before the request goes to Python, so a slow
// upload never holds a Python thread. Kept in memory up to a threshold, past it spilled to an
// unlinked temporary file.
#include <cstddef>
#include <string>
#include <string_view>

namespace gantry {

class RequestBody {
public:
    explicit RequestBody(std::size_t memory_limit = 1 << 20) : memory_limit_(memory_limit) {}
    RequestBody(RequestBody&&) noexcept;
    RequestBody& operator=(RequestBody&&) noexcept;
    RequestBody(const RequestBody&) = delete;
    RequestBody& operator=(const RequestBody&) = delete;
    ~RequestBody();

    // Throws std::system_error if the temporary file cannot be written.
    void append(std::string_view bytes);

    std::size_t size() const { return size_; }
    bool in_memory() const { return fd_ < 0; }
    // Valid while in_memory().
    const std::string& memory() const { return memory_; }
    // Valid while !in_memory(): the temporary file, positioned at its start. Still owned by this.
    int file_descriptor() const { return fd_; }
    // Hands the temporary file over (the caller closes it); -1 when in memory.
    int release_file();
    // The whole body as one string, read back from the file if it spilled. Throws std::system_error.
    std::string contents() const;

private:
    void spill();

    std::size_t memory_limit_;
    std::size_t size_ = 0;
    std::string memory_;
    int fd_ = -1;
};

}  // namespace gantry
