#include "server/load_board.hpp"  // first and alone: the header is self-contained

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

namespace gantry {
namespace {

void serve(LoadBoard& board, int n, int pid, int connections, int busy = 0) {
    board.open(n);
    auto* s = board.slot(n);
    s->pid = pid;
    s->accepting = 1;
    s->connections = connections;
    s->python_busy = busy;
}

TEST(LoadBoard, TheLeastLoadedWorkerAccepts) {
    auto board = LoadBoard::create();
    serve(*board, 0, 100, 0);
    serve(*board, 1, 101, 0);
    EXPECT_TRUE(board->may_accept(0));  // a tie: both may
    EXPECT_TRUE(board->may_accept(1));
    board->slot(0)->connections = 2;
    EXPECT_FALSE(board->may_accept(0));  // two above worker 1: it waits
    EXPECT_TRUE(board->may_accept(1));
    board->slot(0)->connections = 1;
    EXPECT_TRUE(board->may_accept(0));  // within the slack of one
    EXPECT_FALSE(board->may_accept(0, 0));
}

TEST(LoadBoard, PythonWorkCountsAsLoad) {
    auto board = LoadBoard::create();
    serve(*board, 0, 100, 1, 3);  // one connection, but three calls waiting for its Python
    serve(*board, 1, 101, 2, 0);
    EXPECT_FALSE(board->may_accept(0));
    EXPECT_TRUE(board->may_accept(1));
}

TEST(LoadBoard, OnlyServingAcceptingWorkersCount) {
    auto board = LoadBoard::create();
    serve(*board, 0, 100, 5);
    serve(*board, 1, 101, 0);
    board->slot(1)->accepting = 0;  // draining (HUP's old generation, recycling)
    EXPECT_TRUE(board->may_accept(0));
    board->slot(1)->accepting = 1;
    EXPECT_FALSE(board->may_accept(0));
    board->clear(1);  // the master reaped it
    EXPECT_TRUE(board->may_accept(0));
    EXPECT_EQ(board->slot(1)->connections.load(), 0);
    EXPECT_TRUE(board->may_accept(7));  // a slot never opened: alone
    EXPECT_TRUE(board->may_accept(LoadBoard::kSlots + 3));  // beyond the board: never held back
}

TEST(LoadBoard, AnIdleWorkerWithFewerConnectionsIsTheSignalToSendOneAway) {
    auto board = LoadBoard::create();
    serve(*board, 0, 100, 3, 4);
    serve(*board, 1, 101, 1, 0);
    EXPECT_TRUE(board->other_worker_idle(0));
    EXPECT_FALSE(board->other_worker_idle(1));
    board->slot(1)->python_busy = 1;  // busy too: nothing to gain
    EXPECT_FALSE(board->other_worker_idle(0));
    board->slot(1)->python_busy = 0;
    board->slot(1)->connections = 2;  // one fewer: moving one would only swap their places
    EXPECT_FALSE(board->other_worker_idle(0));
}

TEST(LoadBoard, OpeningASlotStartsItAfresh) {
    auto board = LoadBoard::create();
    serve(*board, 2, 100, 9, 9);
    board->slot(2)->requests_total = 50;
    EXPECT_EQ(board->slots_in_use(), 3);
    board->open(2);
    EXPECT_EQ(board->slot(2)->pid.load(), 0);
    EXPECT_EQ(board->slot(2)->connections.load(), 0);
    EXPECT_EQ(board->slot(2)->requests_total.load(), 0u);
    EXPECT_EQ(board->slots_in_use(), 3);
}

TEST(LoadBoard, RendersEachServingWorkerForPrometheus) {
    auto board = LoadBoard::create();
    serve(*board, 0, 4242, 3, 1);
    board->slot(0)->requests_total = 17;
    board->slot(0)->connections_total = 5;
    board->open(1);  // forked, not serving yet: left out
    std::string text = board->render();
    EXPECT_NE(text.find("# TYPE gantry_worker_connections gauge\ngantry_worker_connections{worker=\"0\",pid=\"4242\"} 3\n"),
              std::string::npos) << text;
    EXPECT_NE(text.find("gantry_worker_requests_total{worker=\"0\",pid=\"4242\"} 17\n"), std::string::npos);
    EXPECT_NE(text.find("gantry_worker_connections_total{worker=\"0\",pid=\"4242\"} 5\n"), std::string::npos);
    EXPECT_NE(text.find("gantry_worker_python_busy{worker=\"0\",pid=\"4242\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("# TYPE gantry_worker_sent_away_total counter\n"), std::string::npos);
    EXPECT_EQ(text.find("worker=\"1\""), std::string::npos);
}

TEST(LoadBoard, WorkersSeeEachOtherAcrossFork) {
    auto board = LoadBoard::create();
    serve(*board, 0, static_cast<int>(::getpid()), 0);
    board->open(1);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto* s = board->slot(1);
        s->pid = static_cast<int>(::getpid());
        s->accepting = 1;
        s->connections = 4;
        s->requests_total = 12;
        std::_Exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(board->slot(1)->connections.load(), 4);
    EXPECT_EQ(board->slot(1)->requests_total.load(), 12u);
    EXPECT_FALSE(board->may_accept(1));
    EXPECT_TRUE(board->may_accept(0));
}

}  // namespace
}  // namespace gantry
