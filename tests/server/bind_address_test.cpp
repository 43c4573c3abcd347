#include "server/bind_address.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace gantry {
namespace {

BindAddress tcp(std::string host, std::uint16_t port) {
    BindAddress a;
    a.host = std::move(host);
    a.port = port;
    return a;
}

TEST(BindAddress, HostAndPort) {
    EXPECT_EQ(parse_bind_address("127.0.0.1:8000"), tcp("127.0.0.1", 8000));
    EXPECT_EQ(parse_bind_address("0.0.0.0:80"), tcp("0.0.0.0", 80));
    EXPECT_EQ(parse_bind_address("localhost:65535"), tcp("localhost", 65535));
}

TEST(BindAddress, HostnameIsLowercasedAsGunicornDoes) {
    EXPECT_EQ(parse_bind_address("LocalHost:9000"), tcp("localhost", 9000));
}

TEST(BindAddress, BracketedIpv6) {
    EXPECT_EQ(parse_bind_address("[::1]:8000"), tcp("::1", 8000));
    EXPECT_EQ(parse_bind_address("[::]:443"), tcp("::", 443));
    EXPECT_EQ(parse_bind_address("[2001:DB8::1]:1"), tcp("2001:db8::1", 1));
    EXPECT_EQ(parse_bind_address("[fe80::1%eth0]:5000"), tcp("fe80::1%eth0", 5000));
    EXPECT_EQ(parse_bind_address("[::1]"), tcp("::1", 8000));
}

TEST(BindAddress, ColonPortMeansAllInterfaces) {
    EXPECT_EQ(parse_bind_address(":8080"), tcp("0.0.0.0", 8080));
}

TEST(BindAddress, BarePortListensOnLoopback) {
    EXPECT_EQ(parse_bind_address("9000"), tcp("127.0.0.1", 9000));
}

TEST(BindAddress, BareHostUsesPort8000) {
    EXPECT_EQ(parse_bind_address("example.com"), tcp("example.com", 8000));
    EXPECT_EQ(parse_bind_address("10.0.0.1"), tcp("10.0.0.1", 8000));
}

TEST(BindAddress, PortZeroIsKept) {
    EXPECT_EQ(parse_bind_address("127.0.0.1:0"), tcp("127.0.0.1", 0));
}

TEST(BindAddress, TcpPrefix) {
    EXPECT_EQ(parse_bind_address("tcp://127.0.0.1:81"), tcp("127.0.0.1", 81));
}

TEST(BindAddress, UnixSocket) {
    BindAddress a = parse_bind_address("unix:/run/gantry.sock");
    EXPECT_EQ(a.kind, BindAddress::Kind::unix_socket);
    EXPECT_EQ(a.path, "/run/gantry.sock");
    EXPECT_EQ(parse_bind_address("unix:///tmp/g.sock").path, "/tmp/g.sock");
    EXPECT_EQ(parse_bind_address("unix:relative.sock").path, "relative.sock");
}

void expect_rejected(const std::string& text) {
    try {
        parse_bind_address(text);
        ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("'" + text + "'"), std::string::npos)
            << "message does not name the text: " << e.what();
    }
}

TEST(BindAddress, RejectsBadInput) {
    expect_rejected("");
    expect_rejected("unix:");
    expect_rejected("127.0.0.1:");
    expect_rejected("127.0.0.1:http");
    expect_rejected("127.0.0.1:65536");
    expect_rejected("127.0.0.1:99999999999999999999");
    expect_rejected("127.0.0.1:-1");
    expect_rejected("127.0.0.1:80x");
    expect_rejected("[::1:8000");
    expect_rejected("[::1]8000");
    expect_rejected("[::1]:");
    expect_rejected("[not-v6]:80");
    expect_rejected("[]:80");
    expect_rejected("::1:8000");
    expect_rejected("bad host:80");
    expect_rejected("a/b:80");
    expect_rejected(":");
    expect_rejected("tcp://");
}

TEST(BindAddress, ToString) {
    EXPECT_EQ(tcp("127.0.0.1", 8000).to_string(), "127.0.0.1:8000");
    EXPECT_EQ(tcp("::1", 8000).to_string(), "[::1]:8000");
    BindAddress u;
    u.kind = BindAddress::Kind::unix_socket;
    u.path = "/run/g.sock";
    EXPECT_EQ(u.to_string(), "unix:/run/g.sock");
}

TEST(BindAddress, ToStringRoundTrips) {
    for (const char* text : {"127.0.0.1:8000", "[::1]:9000", "unix:/tmp/x.sock", "example.com:1", "[fe80::1%eth0]:5"})
        EXPECT_EQ(parse_bind_address(text).to_string(), text);
}

}  // namespace
}  // namespace gantry
