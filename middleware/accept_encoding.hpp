#pragma once
// Accept-Encoding (RFC 9110 §12.5.3): which content codings a client takes, with q-values, and
// which one to send. Shared by static files (precompressed variants) and compression.
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gantry {

class AcceptEncoding {
public:
    // An absent header (nullptr): identity only. A malformed one (a bad q-value, an empty
    // coding, stray characters): identity only as well - never an error.
    static AcceptEncoding parse(const std::string* header);
    static AcceptEncoding parse(std::string_view header);

    // The client's q-value (0..1) for `coding` ("gzip", "br", "zstd", "identity"; lower case):
    // its own entry, else "*", else 0 for a coding and 1 for identity. "x-gzip" counts as gzip.
    double quality(std::string_view coding) const;
    bool acceptable(std::string_view coding) const { return quality(coding) > 0; }
    // The q-value of the client's own entry for `coding`, or -1 when it has none.
    double listed_quality(std::string_view coding) const;

private:
    struct Entry {
        std::string coding;  // lower case
        double q = 1;
    };
    std::vector<Entry> entries_;
};

// The coding to send, from `offered` in the server's order of preference: the highest q wins,
// the server's order breaks ties, and identity (returned as "") wins only when the client lists
// it with a higher q ("gzip;q=0.5, identity"): an unlisted identity's implicit 1 does not count.
// Returns "" (identity) when nothing offered is acceptable - even if identity is refused too:
// sending it then is what RFC 9110 allows and what browsers handle.
std::string_view choose_encoding(const AcceptEncoding& accept, std::span<const std::string_view> offered);

}  // namespace gantry
