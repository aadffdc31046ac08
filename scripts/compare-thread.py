#!/usr/bin/env python3
"""Compares what two IMAP servers answer to THREAD (RFC 5256 §4) over the same messages.

Both servers get a fresh mailbox "thread-<pid>" and the corpus APPENDed in the same order
with the same INTERNALDATE (so UIDs and the sent-date fallback agree); then, for each
algorithm, `UID THREAD <alg> UTF-8 ALL` on both. Prints the number of top-level threads
each server gives, how many of them the other gives too (as a set), whether the order of the
common ones agrees, and with --verbose the differing threads with the subjects, Message-IDs
and References of their messages.

Used during development to check tern against Dovecot; the corpus is not part of the project.
Usage:

  compare-thread.py CORPUS_DIR REF_HOST:PORT:USER:PASS OTHER_HOST:PORT:USER:PASS
                    [--alg REFERENCES,ORDEREDSUBJECT] [--limit N] [--verbose]
                    [--timing N]   (after the comparison, time N runs of each on both)
"""
import os
import re
import socket
import sys
import time


class Imap:
    def __init__(self, spec):
        host, port, self.user, self.password = spec.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=120)
        self.file = self.sock.makefile("rb")
        self.n = 0
        self.file.readline()
        self.cmd(b"LOGIN %s %s" % (self.user.encode(), self.password.encode()))

    def cmd(self, line, literal=None):
        self.n += 1
        tag = b"c%d" % self.n
        if literal is None:
            self.sock.sendall(tag + b" " + line + b"\r\n")
        else:
            # NUL octets only in a literal8 (RFC 3516), which both servers take.
            tilde = b"~" if b"\0" in literal else b""
            self.sock.sendall(tag + b" " + line + b" " + tilde + b"{%d+}\r\n" % len(literal)
                              + literal + b"\r\n")
        out = []
        while True:
            got = self.file.readline()
            if not got:
                raise SystemExit("connection closed")
            if got.startswith(tag + b" "):
                return out, got
            out.append(got)


def corpus(path, limit):
    """The files INDEX.tsv lists (first column), else every file under the folder."""
    index = os.path.join(path, "INDEX.tsv")
    if os.path.exists(index):
        with open(index) as h:
            files = [os.path.join(path, l.split("\t")[0]) for l in h.read().splitlines()[1:] if l]
    else:
        files = sorted(os.path.join(r, n) for r, _, ns in os.walk(path) for n in ns)
    data = []
    for f in files:
        with open(f, "rb") as h:
            raw = h.read()
        raw = re.sub(rb"\r?\n", b"\r\n", raw)
        data.append((f, raw))
    return data[:limit] if limit else data


def threads(line):
    """The top-level thread lists of a THREAD response line, as strings."""
    body = line.split(b"THREAD", 1)[1].strip().decode()
    out, depth, start = [], 0, 0
    for i, c in enumerate(body):
        if c == "(":
            if depth == 0:
                start = i
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                out.append(body[start : i + 1])
    return out


def header(raw, name):
    head = raw.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"(?im)^" + name + rb":(.*(?:\r\n[ \t].*)*)", head)
    return m.group(1).replace(b"\r\n", b" ").strip()[:120].decode("latin-1") if m else "-"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "1") for a in sys.argv[1:] if a.startswith("--"))
    path, ref, other = args
    algs = opts.get("alg", "REFERENCES,ORDEREDSUBJECT").split(",")
    msgs = corpus(path, int(opts.get("limit", "0")))
    box = b"thread-%d" % os.getpid()
    servers = [Imap(ref), Imap(other)]
    for s in servers:
        s.cmd(b"CREATE " + box)
        for _, raw in msgs:
            _, ok = s.cmd(b'APPEND %s "01-Jan-2000 00:00:00 +0000"' % box, raw)
            if b" OK" not in ok:
                print("APPEND refused:", ok)
        s.cmd(b"SELECT " + box)
    for alg in algs:
        res = []
        for s in servers:
            out, ok = s.cmd(b"UID THREAD %s UTF-8 ALL" % alg.encode())
            line = next((l for l in out if l.startswith(b"* THREAD")), b"* THREAD")
            res.append(threads(line.rstrip(b"\r\n")))
        a, b = res
        only_a = [t for t in a if t not in set(b)]
        only_b = [t for t in b if t not in set(a)]
        common = [t for t in a if t in set(b)]
        order = common == [t for t in b if t in set(a)]
        print(f"{alg}: {len(msgs)} messages; threads ref {len(a)}, other {len(b)}; "
              f"differing ref {len(only_a)}, other {len(only_b)}; common order same: {order}")
        if "verbose" in opts:
            def show(t):
                for uid in re.findall(r"\d+", t):
                    f, raw = msgs[int(uid) - 1]
                    print(f"      {uid}: {os.path.relpath(f, path)} S={header(raw, b'Subject')!r} "
                          f"D={header(raw, b'Date')!r} M={header(raw, b'Message-ID')!r} "
                          f"R={header(raw, b'References')!r} I={header(raw, b'In-Reply-To')!r}")
            for t in only_a:
                print("  ref only:", t)
                show(t)
            for t in only_b:
                print("  other only:", t)
                show(t)
    runs = int(opts.get("timing", "0"))
    for alg in algs if runs else []:
        for name, s in zip(("ref", "other"), servers):
            best = None
            for _ in range(runs):
                t0 = time.perf_counter()
                s.cmd(b"UID THREAD %s UTF-8 ALL" % alg.encode())
                dt = time.perf_counter() - t0
                best = dt if best is None else min(best, dt)
            print(f"timing {alg} {name}: best of {runs}: {best * 1000:.1f} ms")
    for s in servers:
        s.cmd(b"CLOSE")
        s.cmd(b"DELETE " + box)


if __name__ == "__main__":
    main()
