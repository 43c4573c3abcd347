#include "server/forwarded_headers.hpp"  // first: the header stands alone

#include <gtest/gtest.h>

namespace gantry {
namespace {

HttpRequest from(std::string peer, std::vector<HttpHeader> headers) {
    HttpRequest r;
    r.remote_addr = std::move(peer);
    r.remote_port = 5555;
    r.headers = std::move(headers);
    return r;
}

TEST(ForwardedHeaders, IgnoredFromAnUntrustedPeer) {
    auto r = from("10.0.0.9", {{"X-Forwarded-For", "1.2.3.4"}, {"X-Forwarded-Proto", "https"}});
    apply_forwarded_headers(r, {"127.0.0.1"});
    EXPECT_EQ(r.remote_addr, "10.0.0.9");
    EXPECT_EQ(r.remote_port, 5555);
    EXPECT_EQ(r.url_scheme, "http");
}

TEST(ForwardedHeaders, BelievedFromATrustedPeer) {
    auto r = from("127.0.0.1", {{"x-forwarded-for", "1.2.3.4"}, {"x-forwarded-proto", "https"}});
    apply_forwarded_headers(r, {"127.0.0.1"});
    EXPECT_EQ(r.remote_addr, "1.2.3.4");
    EXPECT_EQ(r.url_scheme, "https");
}

TEST(ForwardedHeaders, RightMostUntrustedHopIsTheClient) {
    // The client can write anything on the left; only hops added by trusted proxies count.
    auto r = from("127.0.0.1", {{"X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.2"}});
    apply_forwarded_headers(r, {"127.0.0.1", "10.0.0.2"});
    EXPECT_EQ(r.remote_addr, "1.2.3.4");
}

TEST(ForwardedHeaders, StarTrustsEveryone) {
    auto r = from("10.9.9.9", {{"X-Forwarded-For", "1.2.3.4, 5.6.7.8"}});
    apply_forwarded_headers(r, {"*"});
    EXPECT_EQ(r.remote_addr, "1.2.3.4");
}

TEST(ForwardedHeaders, UnknownProtoIsIgnored) {
    auto r = from("127.0.0.1", {{"X-Forwarded-Proto", "gopher"}});
    apply_forwarded_headers(r, {"127.0.0.1"});
    EXPECT_EQ(r.url_scheme, "http");
}

TEST(ForwardedHeaders, UnixSocketPeersAreLocal) {
    EXPECT_TRUE(is_trusted_proxy("", {}));
    EXPECT_FALSE(is_trusted_proxy("127.0.0.2", {"127.0.0.1"}));
}

}  // namespace
}  // namespace gantry
