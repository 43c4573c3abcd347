#pragma once
// Cache keys, as Django's learn_cache_key/get_cache_key make them: one key per URL for the list
// of request headers the response named in Vary (learned from the response), and one key per
// variant: the URL plus the values of those headers in this request. Accept-Encoding is keyed
// by the coding the client would get, not its raw text, so each compressed variant is stored once.
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"

namespace gantry {

class CacheKey {
public:
    // `host`: the Host the request is for (X-Forwarded-Host already applied from trusted proxies).
    // HEAD shares GET's key, so a HEAD can be answered from a GET's entry.
    CacheKey(const HttpRequest& request, std::string_view host);

    // The key under which the Vary list for this URL is kept.
    std::string vary_list_key() const;
    // The key of this request's variant, given the Vary list learned for the URL. `coding` is the
    // content coding this client would get ("br", "gzip", "" for identity): it stands for
    // Accept-Encoding when that is in the list.
    std::string variant_key(const std::vector<std::string>& vary, std::string_view coding) const;

    const std::string& url() const { return url_; }

private:
    const HttpRequest* request_;
    std::string url_;  // "GET http://host/path?query"
};

// A Vary header's field names, lower-cased, deduplicated and sorted (so "Cookie, Accept" and
// "accept,cookie" learn the same list).
std::vector<std::string> vary_names(const std::vector<HttpHeader>& response_headers);
std::string join_vary(const std::vector<std::string>& names);
std::vector<std::string> split_vary(std::string_view joined);

}  // namespace gantry
