#!/usr/bin/python3
"""How the kernel alone spreads a burst of connections over worker processes that never get busy:
the candidates for balancing gantry's workers, measured with trivial servers on this machine.

Each strategy runs W worker processes that accept (and hold) connections on 127.0.0.1; a client
then opens C connections at once, R times over (each round with fresh workers), and the split
of every round is reported: how many connections the worker with the fewest got.

  shared        one listening socket inherited by every worker, plain epoll (gantry before the
                load board: every worker is woken, the first to run accepts everything pending)
  exclusive     the same socket, EPOLLEXCLUSIVE (one waiter woken per event)
  reuseport     a socket per worker with SO_REUSEPORT (the kernel hashes each connection's
                4-tuple onto one of them)

    /usr/bin/python3 bench/e2e/accept_spread.py --rounds 20 --connections 32 --workers 2
"""
import argparse
import os
import select
import signal
import socket
import statistics
import sys
import time


def listener(port=0, reuseport=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1024)
    s.setblocking(False)
    return s


def worker(sock, exclusive, report_fd, ready_fd):
    """Accepts whatever is pending on each wake-up, holds the connections, reports the count."""
    ep = select.epoll()
    ep.register(sock.fileno(), select.EPOLLIN | (select.EPOLLEXCLUSIVE if exclusive else 0))
    os.write(ready_fd, b"r")
    held = []
    signal.signal(signal.SIGTERM, lambda *a: (os.write(report_fd, b"%d\n" % len(held)), os._exit(0)))
    while True:
        for _ in ep.poll():
            while True:
                try:
                    c, _ = sock.accept()
                except BlockingIOError:
                    break
                held.append(c)


def one_round(strategy, workers, connections):
    socks = []
    if strategy == "reuseport":
        first = listener(reuseport=True)
        port = first.getsockname()[1]
        socks = [first] + [listener(port, reuseport=True) for _ in range(workers - 1)]
    else:
        s = listener()
        port = s.getsockname()[1]
        socks = [s] * workers
    report_r, report_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pids = []
    for i in range(workers):
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            os.close(ready_r)
            worker(socks[i], strategy == "exclusive", report_w, ready_w)
        pids.append(pid)
    os.close(report_w)
    os.close(ready_w)
    for _ in range(workers):
        os.read(ready_r, 1)
    time.sleep(0.05)  # every worker waiting in epoll_wait
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    time.sleep(0.2)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    counts = []
    with os.fdopen(report_r) as f:
        counts = [int(line) for line in f]
    for pid in pids:
        os.waitpid(pid, 0)
    for c in clients:
        c.close()
    for s in set(socks):
        s.close()
    os.close(ready_r)
    return sorted(counts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--strategies", default="shared,exclusive,reuseport")
    opts = ap.parse_args(argv)
    print("%-10s %-44s %s" % ("strategy", "fewest connections a worker got, per round", "rounds under 30%"))
    for strategy in opts.strategies.split(","):
        fewest = [one_round(strategy, opts.workers, opts.connections)[0] for _ in range(opts.rounds)]
        under = sum(1 for f in fewest if f < 0.3 * opts.connections)
        print("%-10s %-44s %d of %d (median fewest %g)" % (strategy, " ".join(map(str, fewest)), under,
                                                           opts.rounds, statistics.median(fewest)))
    print("(%d workers, %d connections at once, %d rounds; a fair split gives each worker %g)"
          % (opts.workers, opts.connections, opts.rounds, opts.connections / opts.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
