#include "cache/cached_response.hpp"

#include <algorithm>
#include <cstring>

namespace gantry {

namespace {

constexpr std::uint8_t kFormat = 1;

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_text(std::string& out, std::string_view s) {
    put_u32(out, static_cast<std::uint32_t>(s.size()));
    out.append(s);
}

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool u64(std::uint64_t& v) {
        if (in_.size() < 8) return false;
        v = 0;
        for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(in_[i])) << (8 * i);
        in_.remove_prefix(8);
        return true;
    }
    bool u32(std::uint32_t& v) {
        if (in_.size() < 4) return false;
        v = 0;
        for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(in_[i])) << (8 * i);
        in_.remove_prefix(4);
        return true;
    }
    bool text(std::string& s) {
        std::uint32_t n;
        if (!u32(n) || in_.size() < n) return false;
        s.assign(in_.substr(0, n));
        in_.remove_prefix(n);
        return true;
    }
    bool byte(std::uint8_t& b) {
        if (in_.empty()) return false;
        b = static_cast<std::uint8_t>(in_[0]);
        in_.remove_prefix(1);
        return true;
    }
    bool done() const { return in_.empty(); }

private:
    std::string_view in_;
};

}  // namespace

CachedResponse::Freshness CachedResponse::freshness(std::time_t now) const {
    if (now < fresh_until) return Freshness::fresh;
    if (now < stale_while_revalidate_until) return Freshness::stale_while_revalidate;
    if (now < stale_if_error_until) return Freshness::stale_if_error_only;
    return Freshness::expired;
}

std::time_t CachedResponse::keep_until() const {
    return std::max({fresh_until, stale_while_revalidate_until, stale_if_error_until});
}

std::string CachedResponse::serialize() const {
    std::string out;
    std::size_t size = 64 + body.size() + head.reason.size();
    for (const auto& h : head.headers) size += 8 + h.name.size() + h.value.size();
    out.reserve(size);
    out.push_back(static_cast<char>(kFormat));
    put_u32(out, static_cast<std::uint32_t>(head.status));
    put_text(out, head.reason);
    put_u64(out, static_cast<std::uint64_t>(stored_at));
    put_u64(out, static_cast<std::uint64_t>(fresh_until));
    put_u64(out, static_cast<std::uint64_t>(stale_while_revalidate_until));
    put_u64(out, static_cast<std::uint64_t>(stale_if_error_until));
    out.push_back(serves_authorized ? 1 : 0);
    put_u32(out, static_cast<std::uint32_t>(head.headers.size()));
    for (const auto& h : head.headers) {
        put_text(out, h.name);
        put_text(out, h.value);
    }
    put_text(out, body);
    return out;
}

std::optional<CachedResponse> CachedResponse::parse(std::string_view bytes) {
    Reader in(bytes);
    CachedResponse r;
    std::uint8_t format = 0, authorized = 0;
    std::uint32_t status = 0, count = 0;
    std::uint64_t stored = 0, fresh = 0, swr = 0, sie = 0;
    if (!in.byte(format) || format != kFormat) return std::nullopt;
    if (!in.u32(status) || status < 100 || status > 999 || !in.text(r.head.reason)) return std::nullopt;
    if (!in.u64(stored) || !in.u64(fresh) || !in.u64(swr) || !in.u64(sie) || !in.byte(authorized)) return std::nullopt;
    if (!in.u32(count) || count > 10000) return std::nullopt;
    r.head.status = static_cast<int>(status);
    r.head.headers.resize(count);
    for (auto& h : r.head.headers)
        if (!in.text(h.name) || !in.text(h.value)) return std::nullopt;
    if (!in.text(r.body) || !in.done()) return std::nullopt;
    r.stored_at = static_cast<std::time_t>(stored);
    r.fresh_until = static_cast<std::time_t>(fresh);
    r.stale_while_revalidate_until = static_cast<std::time_t>(swr);
    r.stale_if_error_until = static_cast<std::time_t>(sie);
    r.serves_authorized = authorized != 0;
    return r;
}

}  // namespace gantry
