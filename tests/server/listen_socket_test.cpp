#include "server/listen_socket.hpp"  // first: the header stands alone

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace gantry {
namespace {

TEST(ListenSocket, PortZeroReportsThePortTheKernelChose) {
    std::vector<ListenSocket> sockets{open_listen_socket(parse_bind_address("127.0.0.1:0"), 16)};
    EXPECT_GE(sockets[0].fd, 0);
    EXPECT_EQ(sockets[0].family, AF_INET);
    EXPECT_NE(sockets[0].address.port, 0);
    close_listen_sockets(sockets, true);
    EXPECT_EQ(sockets[0].fd, -1);
}

TEST(ListenSocket, AnAddressInUseIsAClearError) {
    std::vector<ListenSocket> first{open_listen_socket(parse_bind_address("127.0.0.1:0"), 16)};
    BindAddress same = first[0].address;
    try {
        open_listen_socket(same, 16);
        ADD_FAILURE() << "bound the same port twice";
    } catch (const std::runtime_error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("in use"), std::string::npos) << what;
        EXPECT_NE(what.find(std::to_string(same.port)), std::string::npos) << what;
    }
    close_listen_sockets(first, true);
}

TEST(ListenSocket, UnixSocketReplacesAStaleSocketButNotAFile) {
    std::string path = "/tmp/gantry_listen_test_" + std::to_string(::getpid()) + ".sock";
    BindAddress address = parse_bind_address("unix:" + path);
    std::vector<ListenSocket> first{open_listen_socket(address, 16)};
    ::close(first[0].fd);  // a previous run that died: the socket file stays behind
    std::vector<ListenSocket> second{open_listen_socket(address, 16)};
    EXPECT_EQ(second[0].family, AF_UNIX);
    close_listen_sockets(second, true);
    EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the master removes its socket file";

    std::ofstream(path) << "not a socket";
    EXPECT_THROW(open_listen_socket(address, 16), std::runtime_error);
    std::remove(path.c_str());
}

}  // namespace
}  // namespace gantry
