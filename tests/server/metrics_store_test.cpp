#include "server/metrics_store.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace gantry {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* kLe[] = {"0.00001", "0.00005", "0.0001", "0.00025", "0.0005",
                               "0.001",   "0.0025",  "0.005",  "0.01",    "0.025",
                               "0.05",    "0.1",     "0.25",   "0.5",     "1",
                               "2.5",     "5",       "10",     "+Inf"};

// The value of the one sample line "<series> <value>" in a rendered exposition, as text.
std::optional<std::string> sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    std::string line;
    std::optional<std::string> found;
    while (std::getline(in, line)) {
        if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
            line[series.size()] == ' ') {
            if (found) throw std::runtime_error("series twice: " + series);
            found = line.substr(series.size() + 1);
        }
    }
    return found;
}

std::string bucket(const std::string& stage, const std::string& le) {
    return "gantry_stage_duration_seconds_bucket{stage=\"" + stage + "\",le=\"" + le + "\"}";
}

// The cumulative count of every bucket of a stage, in le order.
std::vector<unsigned long long> buckets(const std::string& text, const std::string& stage) {
    std::vector<unsigned long long> out;
    for (const char* le : kLe) {
        auto v = sample(text, bucket(stage, le));
        if (!v) throw std::runtime_error("missing bucket le=" + std::string(le));
        out.push_back(std::stoull(*v));
    }
    return out;
}

TEST(MetricsStoreTest, RejectsBadStageLists) {
    EXPECT_THROW(MetricsStore::create({"app", "has space"}), std::invalid_argument);
    EXPECT_THROW(MetricsStore::create({"quo\"te"}), std::invalid_argument);
    EXPECT_THROW(MetricsStore::create({"new\nline"}), std::invalid_argument);
    EXPECT_THROW(MetricsStore::create({"back\\slash"}), std::invalid_argument);
    EXPECT_THROW(MetricsStore::create({""}), std::invalid_argument);
    EXPECT_THROW(MetricsStore::create({std::string(129, 'a')}), std::invalid_argument);
    EXPECT_THROW(MetricsStore::create({"app", "write", "app"}), std::invalid_argument);

    std::vector<std::string> names;
    for (int i = 0; i < 64; ++i) names.push_back("stage_" + std::to_string(i));
    EXPECT_NO_THROW(MetricsStore::create(names));
    names.push_back("stage_64");
    EXPECT_THROW(MetricsStore::create(names), std::invalid_argument);

    EXPECT_NO_THROW(MetricsStore::create({"timing.on_request", "python_wait", "app", "write",
                                          "Django:mw-1", std::string(128, 'x')}));
    EXPECT_NO_THROW(MetricsStore::create({}));
}

TEST(MetricsStoreTest, StageIndexFollowsTheGivenOrder) {
    auto store = MetricsStore::create({"timing.on_request", "python_wait", "app", "write"});
    EXPECT_EQ(store->stage_index("timing.on_request"), 0u);
    EXPECT_EQ(store->stage_index("python_wait"), 1u);
    EXPECT_EQ(store->stage_index("app"), 2u);
    EXPECT_EQ(store->stage_index("write"), 3u);
    EXPECT_EQ(store->stage_index("App"), MetricsStore::npos);
    EXPECT_EQ(store->stage_index(""), MetricsStore::npos);
    EXPECT_EQ(store->stage_names().size(), 4u);
}

TEST(MetricsStoreTest, StartsAtZero) {
    auto store = MetricsStore::create({"app"});
    const std::string text = store->render();
    for (unsigned long long v : buckets(text, "app")) EXPECT_EQ(v, 0u);
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_sum{stage=\"app\"}"), "0.000000000");
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_count{stage=\"app\"}"), "0");
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"2xx\"}"), "0");
    EXPECT_EQ(sample(text, "gantry_requests_in_flight"), "0");
    EXPECT_EQ(sample(text, "gantry_worker_restarts_total"), "0");
}

// le is inclusive: a duration equal to a bound belongs to that bucket; one nanosecond more goes
// to the next. Each observation goes to its own stage so each stage shows exactly one step.
TEST(MetricsStoreTest, BucketEdgesAreInclusiveAndCumulative) {
    struct Case {
        std::chrono::nanoseconds d;
        std::size_t first_bucket;  // the first le whose cumulative count is 1
    };
    const std::vector<Case> cases = {
        {0ns, 0},          {-5ns, 0},           {1ns, 0},
        {10us, 0},         {10us + 1ns, 1},     {50us, 1},
        {50us + 1ns, 2},   {1ms, 5},            {1ms + 1ns, 6},
        {250ms, 12},       {1s, 14},            {1s + 1ns, 15},
        {10s, 17},         {10s + 1ns, 18},     {std::chrono::hours(24), 18},
    };
    std::vector<std::string> names;
    for (std::size_t i = 0; i < cases.size(); ++i) names.push_back("c" + std::to_string(i));
    auto store = MetricsStore::create(names);
    for (std::size_t i = 0; i < cases.size(); ++i) store->observe(i, cases[i].d);

    const std::string text = store->render();
    for (std::size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE("case " + std::to_string(i) + ": " + std::to_string(cases[i].d.count()) + "ns");
        const auto got = buckets(text, names[i]);
        for (std::size_t b = 0; b < got.size(); ++b) {
            EXPECT_EQ(got[b], b >= cases[i].first_bucket ? 1u : 0u) << "le=" << kLe[b];
        }
        EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_count{stage=\"" + names[i] + "\"}"),
                  "1");
    }
}

TEST(MetricsStoreTest, SumIsExactSecondsAndCountMatchesInfBucket) {
    auto store = MetricsStore::create({"python_wait", "app"});
    const std::size_t app = store->stage_index("app");
    store->observe(app, 1500us);
    store->observe(app, 2250ns);
    store->observe(app, 3s + 7ns);
    store->observe(app, 40us);

    const std::string text = store->render();
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_sum{stage=\"app\"}"), "3.001542257");
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_count{stage=\"app\"}"), "4");
    const std::vector<unsigned long long> expected = {1, 2, 2, 2, 2, 2, 3, 3, 3, 3,
                                                      3, 3, 3, 3, 3, 3, 4, 4, 4};
    EXPECT_EQ(buckets(text, "app"), expected);
    // The other stage is untouched.
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_count{stage=\"python_wait\"}"), "0");
}

TEST(MetricsStoreTest, OutOfRangeStageIsIgnored) {
    auto store = MetricsStore::create({"app"});
    store->observe(MetricsStore::npos, 1ms);
    store->observe(1, 1ms);
    store->observe(64, 1ms);
    EXPECT_EQ(sample(store->render(), "gantry_stage_duration_seconds_count{stage=\"app\"}"), "0");
}

TEST(MetricsStoreTest, CountsResponsesByClass) {
    auto store = MetricsStore::create({});
    for (int status : {100, 101, 199, 200, 204, 299, 200, 301, 304, 404, 400, 499, 500, 503, 599}) {
        store->count_response(status);
    }
    for (int ignored : {0, 99, 600, 999, -200}) store->count_response(ignored);

    const std::string text = store->render();
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"1xx\"}"), "3");
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"2xx\"}"), "4");
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"3xx\"}"), "2");
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"4xx\"}"), "3");
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"5xx\"}"), "3");
}

TEST(MetricsStoreTest, InFlightGaugeAndWorkerRestarts) {
    auto store = MetricsStore::create({});
    store->in_flight_add(1);
    store->in_flight_add(1);
    store->in_flight_add(1);
    store->in_flight_add(-1);
    store->count_worker_restart();
    store->count_worker_restart();
    std::string text = store->render();
    EXPECT_EQ(sample(text, "gantry_requests_in_flight"), "2");
    EXPECT_EQ(sample(text, "gantry_worker_restarts_total"), "2");

    store->in_flight_add(-2);
    EXPECT_EQ(sample(store->render(), "gantry_requests_in_flight"), "0");
    store->in_flight_add(-1);  // a gauge, not a counter: it may go below zero and be shown so
    EXPECT_EQ(sample(store->render(), "gantry_requests_in_flight"), "-1");
}

// The store is made before fork, as the master does; two children count at the same time and
// exit; the parent, which counted nothing itself, sees both children's numbers.
TEST(MetricsStoreTest, ForkedWorkersAggregateIntoOneStore) {
    auto store = MetricsStore::create({"python_wait", "app"});
    const std::size_t app = store->stage_index("app");
    constexpr int kN = 20000;

    std::vector<pid_t> children;
    for (int c = 0; c < 2; ++c) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            for (int i = 0; i < kN; ++i) {
                store->in_flight_add(1);
                store->observe(app, 2ms);  // le="0.0025"
                store->count_response(c == 0 ? 200 : 404);
                store->count_response(503);
                store->in_flight_add(-1);
            }
            store->in_flight_add(1);  // each child leaves one request in flight
            store->count_worker_restart();
            ::_exit(0);  // no gtest teardown, no destructors in the child
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    const std::string text = store->render();
    const std::string total = std::to_string(2 * kN);
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_count{stage=\"app\"}"), total);
    EXPECT_EQ(sample(text, bucket("app", "0.001")), "0");
    EXPECT_EQ(sample(text, bucket("app", "0.0025")), total);
    EXPECT_EQ(sample(text, bucket("app", "+Inf")), total);
    // 40000 x 2 ms = 80 s, exactly.
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_sum{stage=\"app\"}"), "80.000000000");
    EXPECT_EQ(sample(text, "gantry_stage_duration_seconds_count{stage=\"python_wait\"}"), "0");
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"2xx\"}"), std::to_string(kN));
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"4xx\"}"), std::to_string(kN));
    EXPECT_EQ(sample(text, "gantry_requests_total{status=\"5xx\"}"), total);
    EXPECT_EQ(sample(text, "gantry_requests_in_flight"), "2");
    EXPECT_EQ(sample(text, "gantry_worker_restarts_total"), "2");
}

// The exposition is read by Prometheus' own Python parser (Debian's python3-prometheus-client),
// which prints what it understood as JSON for the checks below.
class MetricsStoreParseTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("gantry_metrics_test_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    json parse_with_prometheus_client(const std::string& exposition) {
        const auto metrics = dir_ / "metrics.txt";
        const auto script = dir_ / "parse.py";
        std::ofstream(metrics, std::ios::binary) << exposition;
        std::ofstream(script) << R"PY(
import json, sys
from prometheus_client.parser import text_string_to_metric_families
with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
print(json.dumps([{"name": fam.name, "type": fam.type,
                   "samples": [[s.name, s.labels, s.value] for s in fam.samples]}
                  for fam in text_string_to_metric_families(text)]))
)PY";
        const std::string cmd =
            "/usr/bin/python3 '" + script.string() + "' '" + metrics.string() + "' 2>&1";
        FILE* pipe = ::popen(cmd.c_str(), "r");
        if (pipe == nullptr) throw std::runtime_error("popen failed");
        std::string output;
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
        const int status = ::pclose(pipe);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ADD_FAILURE() << "the prometheus_client parser failed:\n" << output;
            return json::array();
        }
        return json::parse(output);
    }

    std::filesystem::path dir_;
};

TEST_F(MetricsStoreParseTest, PrometheusClientParsesEveryFamily) {
    auto store = MetricsStore::create({"timing.on_request", "python_wait", "app", "write"});
    store->observe(store->stage_index("app"), 3ms);
    store->observe(store->stage_index("app"), 700us);
    store->observe(store->stage_index("app"), 20s);
    store->observe(store->stage_index("write"), 12us);
    store->count_response(200);
    store->count_response(200);
    store->count_response(302);
    store->count_response(500);
    store->in_flight_add(3);
    store->count_worker_restart();
    store->websocket_open_add(2);
    store->count_websocket_received(10);
    store->count_websocket_received(5);
    store->count_websocket_sent(7);

    const json families = parse_with_prometheus_client(store->render());
    ASSERT_TRUE(families.is_array());
    std::map<std::string, json> by_name;
    for (const auto& f : families) by_name[f["name"].get<std::string>()] = f;
    // prometheus_client names a counter family without its _total suffix.
    ASSERT_EQ(by_name.size(), 7u) << families.dump(1);
    ASSERT_TRUE(by_name.count("gantry_stage_duration_seconds"));
    ASSERT_TRUE(by_name.count("gantry_requests"));
    ASSERT_TRUE(by_name.count("gantry_requests_in_flight"));
    ASSERT_TRUE(by_name.count("gantry_worker_restarts"));

    // The histogram: per stage, 19 cumulative buckets ending in +Inf == _count, then _sum.
    const json& hist = by_name["gantry_stage_duration_seconds"];
    EXPECT_EQ(hist["type"], "histogram");
    std::map<std::string, std::vector<std::pair<double, double>>> le_by_stage;  // (le, count)
    std::map<std::string, double> sum_by_stage, count_by_stage;
    for (const auto& s : hist["samples"]) {
        const std::string name = s[0];
        const std::string stage = s[1]["stage"];
        const double value = s[2];
        if (name == "gantry_stage_duration_seconds_bucket") {
            const std::string le = s[1]["le"];
            le_by_stage[stage].emplace_back(le == "+Inf" ? 1e300 : std::stod(le), value);
        } else if (name == "gantry_stage_duration_seconds_sum") {
            sum_by_stage[stage] = value;
        } else if (name == "gantry_stage_duration_seconds_count") {
            count_by_stage[stage] = value;
        } else {
            ADD_FAILURE() << "unexpected sample " << name;
        }
    }
    ASSERT_EQ(le_by_stage.size(), 4u);
    for (const auto& [stage, les] : le_by_stage) {
        SCOPED_TRACE(stage);
        ASSERT_EQ(les.size(), 19u);
        for (std::size_t i = 1; i < les.size(); ++i) {
            EXPECT_LT(les[i - 1].first, les[i].first);    // bounds increase
            EXPECT_LE(les[i - 1].second, les[i].second);  // counts are cumulative
        }
        EXPECT_EQ(les.back().second, count_by_stage.at(stage));
    }
    EXPECT_EQ(count_by_stage["app"], 3);
    EXPECT_NEAR(sum_by_stage["app"], 20.0037, 1e-9);
    EXPECT_EQ(count_by_stage["write"], 1);
    EXPECT_NEAR(sum_by_stage["write"], 0.000012, 1e-12);
    EXPECT_EQ(count_by_stage["python_wait"], 0);
    // app: 700us <= 0.001; 3ms <= 0.005; 20s only in +Inf.
    const auto& app = le_by_stage["app"];
    EXPECT_EQ(app[4].second, 0);   // le=0.0005
    EXPECT_EQ(app[5].second, 1);   // le=0.001
    EXPECT_EQ(app[6].second, 1);   // le=0.0025
    EXPECT_EQ(app[7].second, 2);   // le=0.005
    EXPECT_EQ(app[17].second, 2);  // le=10
    EXPECT_EQ(app[18].second, 3);  // le=+Inf
    EXPECT_DOUBLE_EQ(app[5].first, 0.001);

    const json& requests = by_name["gantry_requests"];
    EXPECT_EQ(requests["type"], "counter");
    std::map<std::string, double> by_status;
    for (const auto& s : requests["samples"]) {
        EXPECT_EQ(s[0], "gantry_requests_total");
        by_status[s[1]["status"].get<std::string>()] = s[2];
    }
    const std::map<std::string, double> expected_status = {
        {"1xx", 0}, {"2xx", 2}, {"3xx", 1}, {"4xx", 0}, {"5xx", 1}};
    EXPECT_EQ(by_status, expected_status);

    const json& in_flight = by_name["gantry_requests_in_flight"];
    EXPECT_EQ(in_flight["type"], "gauge");
    ASSERT_EQ(in_flight["samples"].size(), 1u);
    EXPECT_EQ(in_flight["samples"][0][0], "gantry_requests_in_flight");
    EXPECT_EQ(in_flight["samples"][0][2], 3);

    const json& restarts = by_name["gantry_worker_restarts"];
    EXPECT_EQ(restarts["type"], "counter");
    ASSERT_EQ(restarts["samples"].size(), 1u);
    EXPECT_EQ(restarts["samples"][0][0], "gantry_worker_restarts_total");
    EXPECT_EQ(restarts["samples"][0][2], 1);

    const json& open = by_name["gantry_websocket_connections"];
    EXPECT_EQ(open["type"], "gauge");
    ASSERT_EQ(open["samples"].size(), 1u);
    EXPECT_EQ(open["samples"][0][2], 2);
    for (const char* family : {"gantry_websocket_messages", "gantry_websocket_bytes"}) {
        SCOPED_TRACE(family);
        const json& counter = by_name[family];
        EXPECT_EQ(counter["type"], "counter");
        std::map<std::string, double> by_direction;
        for (const auto& s : counter["samples"]) by_direction[s[1]["direction"].get<std::string>()] = s[2];
        const bool messages = std::string(family) == "gantry_websocket_messages";
        const std::map<std::string, double> expected = messages ? std::map<std::string, double>{{"received", 2}, {"sent", 1}}
                                                                : std::map<std::string, double>{{"received", 15}, {"sent", 7}};
        EXPECT_EQ(by_direction, expected);
    }
}

}  // namespace
}  // namespace gantry

namespace gantry {
namespace {

TEST(MetricsStoreSlots, ADeadWorkersInFlightRequestsAreForgotten) {
    auto store = MetricsStore::create({"app"});
    store->set_worker_slot(3);
    store->in_flight_add(1);
    store->in_flight_add(1);
    store->set_worker_slot(4);
    store->in_flight_add(1);
    EXPECT_NE(store->render().find("gantry_requests_in_flight 3\n"), std::string::npos);
    store->reset_worker_slot(3);  // worker 3 died with two requests in flight
    EXPECT_NE(store->render().find("gantry_requests_in_flight 1\n"), std::string::npos);
}

TEST(MetricsStoreSlots, ADeadWorkersWebSocketsAreForgotten) {
    auto store = MetricsStore::create({"app"});
    store->set_worker_slot(1);
    store->websocket_open_add(3);
    store->set_worker_slot(2);
    store->websocket_open_add(1);
    EXPECT_NE(store->render().find("gantry_websocket_connections 4\n"), std::string::npos);
    store->reset_worker_slot(1);
    EXPECT_NE(store->render().find("gantry_websocket_connections 1\n"), std::string::npos);
}

}  // namespace
}  // namespace gantry
