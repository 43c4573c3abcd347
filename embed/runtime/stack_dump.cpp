#include "embed/runtime/stack_dump.hpp"

#include <sys/mman.h>
#include <unistd.h>

// faulthandler's own dumper (exported by libpython; its header, internal/pycore_traceback.h, needs
// Py_BUILD_CORE). Signal-safe, reads another thread's frames without the GIL.
extern "C" void _Py_DumpTraceback(int fd, PyThreadState* tstate);

namespace gantry {

std::string dump_python_stack(PyThreadState* thread) {
    if (!thread) return "  (no Python thread state)\n";
    int fd = ::memfd_create("gantry-stack", MFD_CLOEXEC);
    if (fd < 0) return "  (cannot dump: memfd_create failed)\n";
    _Py_DumpTraceback(fd, thread);
    std::string text;
    char buf[4096];
    ::lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return text;
}

}  // namespace gantry
