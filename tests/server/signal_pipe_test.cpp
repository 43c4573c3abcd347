#include "server/signal_pipe.hpp"  // first: the header stands alone

#include <cerrno>
#include <csignal>

#include <unistd.h>

#include <gtest/gtest.h>

namespace gantry {
namespace {

TEST(SignalPipe, ASignalArrivesAsItsNumber) {
    SignalPipe signals({SIGUSR1, SIGUSR2});
    ::raise(SIGUSR2);
    int got = 0;
    for (int i = 0; i < 3 && got == 0; ++i) got = signals.wait(std::chrono::milliseconds(200));
    EXPECT_EQ(got, SIGUSR2);
    EXPECT_EQ(signals.wait(std::chrono::milliseconds(20)), 0) << "nothing else pending";
}

TEST(SignalPipe, AnotherReadableDescriptorEndsTheWaitWithoutASignal) {
    SignalPipe signals({SIGUSR1});
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    char byte = 'x';
    ASSERT_EQ(::write(fds[1], &byte, 1), 1);
    EXPECT_EQ(signals.wait(std::chrono::seconds(30), fds[0]), 0) << "returns at once: the other descriptor is readable";
    ::raise(SIGUSR1);
    EXPECT_EQ(signals.wait(std::chrono::seconds(30), fds[0]), SIGUSR1) << "a signal still comes first";
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(SignalPipe, SigpipeIsIgnoredSoAWriteToAClosedPipeIsAnError) {
    SignalPipe signals({SIGUSR1});
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ::close(fds[0]);
    char byte = 'x';
    EXPECT_EQ(::write(fds[1], &byte, 1), -1);  // without SIG_IGN the test process would die here
    EXPECT_EQ(errno, EPIPE);
    ::close(fds[1]);
}

TEST(SignalPipe, TheMaskIsLeftUnblocked) {
    SignalPipe signals({SIGUSR1});
    sigset_t current;
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, nullptr, &current), 0);
    EXPECT_FALSE(sigismember(&current, SIGUSR1)) << "programs the app starts inherit this mask";
}

}  // namespace
}  // namespace gantry
