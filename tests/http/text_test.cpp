#include "http/text.hpp"

#include <gtest/gtest.h>

namespace gantry {
namespace {

TEST(Text, TrimTakesOnlySpacesAndTabs) {
    EXPECT_EQ(trim(" \t a b \t"), "a b");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim(" \t "), "");
    EXPECT_EQ(trim("\r\nx\r\n"), "\r\nx\r\n");  // CR and LF are never OWS
}

TEST(Text, IequalsIsAsciiOnly) {
    EXPECT_TRUE(iequals("Content-Length", "content-length"));
    EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
    EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9"));  // É vs é: not ASCII, so different
    EXPECT_TRUE(istarts_with("Basic dXNlcg==", "basic "));
    EXPECT_FALSE(istarts_with("Bas", "basic "));
    EXPECT_EQ(to_lower("X-Forwarded-FOR"), "x-forwarded-for");
}

TEST(Text, StrictUtf8) {
    EXPECT_TRUE(is_strict_utf8("plain"));
    EXPECT_TRUE(is_strict_utf8("\xe2\x82\xac"));          // U+20AC
    EXPECT_TRUE(is_strict_utf8("\xf0\x9f\x98\x80"));      // U+1F600
    EXPECT_FALSE(is_strict_utf8("\xc0\xaf"));             // overlong "/"
    EXPECT_FALSE(is_strict_utf8("\xe0\x80\xaf"));         // overlong "/", 3 bytes
    EXPECT_FALSE(is_strict_utf8("\xf0\x80\x80\xaf"));     // overlong "/", 4 bytes
    EXPECT_FALSE(is_strict_utf8("\xed\xa0\x80"));         // a surrogate
    EXPECT_FALSE(is_strict_utf8("\xf4\x90\x80\x80"));     // above U+10FFFF
    EXPECT_FALSE(is_strict_utf8("\xe2\x82"));             // truncated
    EXPECT_FALSE(is_strict_utf8("\x80"));                 // a lone continuation byte
}

TEST(Text, Tokens) {
    EXPECT_TRUE(is_token("X-Custom_Header.1"));
    EXPECT_TRUE(is_token("!#$%&'*+-.^_`|~"));
    EXPECT_FALSE(is_token(""));
    EXPECT_FALSE(is_token("a b"));
    EXPECT_FALSE(is_token("a:b"));
    EXPECT_FALSE(is_token(std::string_view("a\0b", 3)));
    EXPECT_FALSE(is_token("caf\xc3\xa9"));
}

TEST(Text, HexValue) {
    EXPECT_EQ(hex_value('0'), 0);
    EXPECT_EQ(hex_value('a'), 10);
    EXPECT_EQ(hex_value('F'), 15);
    EXPECT_EQ(hex_value('g'), -1);
    EXPECT_EQ(hex_value('%'), -1);
}

TEST(Text, ListElementsAreTrimmedAndEmptyOnesSkipped) {
    EXPECT_EQ(split_commas("a, b,,c ,\t"), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_TRUE(split_commas("").empty());
    EXPECT_TRUE(split_commas(" , ,").empty());
}

TEST(Text, HeaderListsKeepQuotedCommas) {
    std::vector<std::string> seen;
    for_each_list_element(R"(private="a, b", , max-age=1)", [&](std::string_view e) { seen.emplace_back(e); });
    EXPECT_EQ(seen, (std::vector<std::string>{R"(private="a, b")", "max-age=1"}));
}

TEST(Text, ListContains) {
    EXPECT_TRUE(list_contains("Accept-Encoding, Cookie", "cookie"));
    EXPECT_TRUE(list_contains("*", "*"));
    EXPECT_FALSE(list_contains("Accept-Encoding", "Accept"));
    EXPECT_FALSE(list_contains("", "Cookie"));
}

}  // namespace
}  // namespace gantry
