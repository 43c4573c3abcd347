// libFuzzer target: the config loader. The input is the contents of a `-c` TOML file, read by
// parse_command_line() as gantry's main() does; a bad file must end in ConfigError (printed as
// "gantry: error: ..." and exit 2), never in any other exception or a crash.
//
// The file is a memfd reached through /proc/self/fd: the real file-reading path, no disk writes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/config.hpp"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

int config_fd() {
    static int fd = [] {
        int made = ::memfd_create("gantry-fuzz-config", 0);
        if (made < 0) std::abort();
        return made;
    }();
    return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    int fd = config_fd();
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    // With and without an app on the command line: the file may name it, or fail to.
    const char* with_app[] = {"gantry", "-c", path.c_str(), "probe:app"};
    const char* file_only[] = {"gantry", "--config", path.c_str()};
    // The second form only where the file may name the app (a CLI11 parse per run is the cost).
    const bool names_app = std::string_view(reinterpret_cast<const char*>(data), size).find("app") != std::string_view::npos;
    for (int variant = 0; variant < (names_app ? 2 : 1); ++variant) {
        try {
            auto result = variant == 0 ? gantry::parse_command_line(4, with_app, "fuzz")
                                       : gantry::parse_command_line(3, file_only, "fuzz");
            check(!result.config.app.empty());
            check(!result.config.binds.empty());
            check(result.config.workers >= 1 && result.config.threads >= 1);
        } catch (const gantry::ConfigError&) {
            // the expected answer to a bad file
        }
    }
    return 0;
}
