#pragma once
// Internal to embed/: --timing full's bridge into Django. gantry.django_timing (enabled by
// load_app before the app's import) records each request's middleware, view and database time;
// take_raw() hands the record over once the request is over (after the iterable's close(),
// where Django's own record ends).
#include <optional>

#include "embed/runtime/gil.hpp"
#include "embed/runtime/py_util.hpp"
#include "http/response_sink.hpp"

namespace gantry {

class DjangoTiming {
public:
    // Finds gantry.django_timing.take_raw; nullopt (with the reason in the error log) when it
    // cannot: the requests then go without a breakdown.
    static std::optional<DjangoTiming> find(GilHeld& gil);

    // Takes the finished request's record and gives it to `sink` as an AppBreakdown. An odd
    // record is skipped: the breakdown is a report, never a reason to fail a request.
    void report(GilHeld& gil, ResponseSink& sink) const;

private:
    explicit DjangoTiming(py::Ref take_raw) : take_raw_(std::move(take_raw)) {}
    py::Ref take_raw_;
};

}  // namespace gantry
