#!/usr/bin/env python3
"""IMAP APPENDs per second: C clients, each on one connection, APPENDing N messages of about
SIZE octets to INBOX one after another (LITERAL+, one command in flight per connection).
Bounded by the count and a time limit. Used to compare a server with and without a quota
(`[quota]`): the quota check must cost nothing measurable.

Usage: scripts/bench-append.py HOST PORT USER PASSWORD [--clients C] [--messages N]
                               [--size OCTETS] [--seconds S]
Prints one line: clients, appends, seconds, appends/s.
"""
import argparse
import socket
import threading
import time


def tagged(f, tag):
    """Reads until the tagged reply; returns its condition."""
    while True:
        line = f.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line.startswith(tag + b" "):
            return line.split(b" ", 2)[1]


def client(args, body, deadline, done, errors):
    try:
        s = socket.create_connection((args.host, args.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"l LOGIN %s %s\r\n" % (args.user.encode(), args.password.encode()))
        if tagged(f, b"l") != b"OK":
            raise RuntimeError("login failed")
        n = 0
        while n < args.messages and time.monotonic() < deadline:
            s.sendall(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body))
            if tagged(f, b"a") != b"OK":
                raise RuntimeError("APPEND refused")
            n += 1
        done.append(n)
        s.sendall(b"z LOGOUT\r\n")
        s.close()
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(repr(e))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--size", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=120)
    args = p.parse_args()
    head = b"From: bench@example.org\r\nSubject: append bench\r\n\r\n"
    body = head + b"x" * max(0, args.size - len(head) - 2) + b"\r\n"
    deadline = time.monotonic() + args.seconds
    done, errors = [], []
    start = time.monotonic()
    threads = [
        threading.Thread(target=client, args=(args, body, deadline, done, errors))
        for _ in range(args.clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    if errors:
        raise SystemExit("errors: %s" % errors[:3])
    total = sum(done)
    print("%d clients, %d appends, %.2f s, %.0f appends/s" % (args.clients, total, took, total / took))


if __name__ == "__main__":
    main()
