#!/usr/bin/env python3
"""LMTP deliveries per second: C clients, each on one connection (as an MTA's connection
cache does), delivering messages of about SIZE octets to one recipient, MAIL/RCPT/DATA
pipelined. Bounded by a count per client and a time limit.

Usage: scripts/bench-lmtp.py HOST PORT RCPT [--clients C] [--messages N] [--size OCTETS]
                             [--seconds S]
Prints one line: clients, deliveries, seconds, deliveries/s.
"""
import argparse
import socket
import threading
import time


def reply(f):
    """Reads one (possibly multi-line) reply; returns its code."""
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3])


def client(host, port, rcpt, messages, body, deadline, done, errors):
    try:
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        reply(f)
        s.sendall(b"LHLO bench.test\r\n")
        reply(f)
        for i in range(messages):
            if time.monotonic() > deadline:
                break
            s.sendall(b"MAIL FROM:<bench@remote.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt)
            codes = [reply(f), reply(f), reply(f)]
            if codes != [250, 250, 354]:
                raise RuntimeError("envelope refused: %r" % codes)
            s.sendall(body)
            code = reply(f)
            if code != 250:
                raise RuntimeError("delivery refused: %d" % code)
            done[0] += 1
        s.sendall(b"QUIT\r\n")
        reply(f)
        s.close()
    except Exception as e:  # reported, not raised: the other clients go on
        errors.append(repr(e))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("rcpt")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    text = b"From: <bench@remote.test>\r\nTo: <%s>\r\nSubject: bench\r\n\r\n" % a.rcpt.encode()
    text += line * max(1, (a.size - len(text)) // len(line))
    body = text + b".\r\n"
    counters = [[0] for _ in range(a.clients)]
    errors = []
    start = time.monotonic()
    deadline = start + a.seconds
    threads = [
        threading.Thread(
            target=client,
            args=(a.host, a.port, a.rcpt.encode(), a.messages, body, deadline, counters[i], errors),
        )
        for i in range(a.clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    total = sum(c[0] for c in counters)
    print("clients %d deliveries %d seconds %.2f rate %.1f/s%s" % (
        a.clients, total, elapsed, total / elapsed if elapsed else 0.0,
        (" errors %s" % errors[:3]) if errors else ""))


if __name__ == "__main__":
    main()
