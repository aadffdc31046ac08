#!/usr/bin/env python3
"""Appends every message of a corpus to two IMAP servers and compares what they answer for
FETCH (ENVELOPE BODYSTRUCTURE RFC822.SIZE BODY.PEEK[1.MIME] BINARY.SIZE[1]) and a few SEARCHes.

Used during development to check tern's MIME analysis against Dovecot on real-world and
hostile mail (the corpus itself is not part of the project). Usage:

  compare-mime.py CORPUS_DIR HOST:PORT:USER:PASS HOST:PORT:USER:PASS [--limit N]

Prints one line per differing message and a summary. Both servers get a fresh mailbox
"compare-<pid>".
"""
import imaplib
import os
import sys


def connect(spec):
    host, port, user, password = spec.split(":")
    m = imaplib.IMAP4(host, int(port))
    m.login(user, password)
    return m


def crlf(data):
    out = bytearray()
    prev = 0
    for b in data:
        if b == 10 and prev != 13:
            out += b"\r"
        out.append(b)
        prev = b
    return bytes(out)


def fetch_all(m, box, n):
    m.select(box)
    out = {}
    # One attribute per FETCH: servers order items differently, which is not a difference.
    for i in range(1, n + 1):
        flat = b""
        for attr in ("ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE"):
            typ, data = m.fetch(str(i), f"({attr})")
            for item in data:
                if isinstance(item, tuple):
                    flat += item[0] + b"{lit}" + (item[1] or b"")
                elif item:
                    flat += item
            flat += b"\n"
        out[i] = flat
    return out


def main():
    corpus, a_spec, b_spec = sys.argv[1:4]
    limit = None
    if "--limit" in sys.argv:
        limit = int(sys.argv[sys.argv.index("--limit") + 1])
    files = []
    for root, _, names in os.walk(corpus):
        for n in sorted(names):
            if n in ("README.md", "INDEX.tsv") or "LICENSES" in root:
                continue
            files.append(os.path.join(root, n))
    files.sort()
    if limit:
        files = files[:limit]
    box = f"compare-{os.getpid()}"
    servers = [connect(a_spec), connect(b_spec)]
    for m in servers:
        m.create(box)
    kept = []
    for f in files:
        data = crlf(open(f, "rb").read())
        answers = []
        for m in servers:
            try:
                typ, detail = m.append(box, None, None, data)
            except imaplib.IMAP4.error as e:
                typ, detail = "ERR", str(e)
            answers.append((typ, detail))
        if all(t == "OK" for t, _ in answers):
            kept.append(f)
        elif any(t == "OK" for t, _ in answers):
            # One accepted what the other refused: the two mailboxes no longer line up, so
            # undo by expunging the accepted copy.
            print(f"APPEND differs for {f}: {answers}")
            for m, (t, _) in zip(servers, answers):
                if t == "OK":
                    m.select(box)
                    m.store("*", "+FLAGS.SILENT", "(\\Deleted)")
                    m.expunge()
    results = [fetch_all(m, box, len(kept)) for m in servers]
    differ = 0
    for i, f in enumerate(kept, 1):
        a, b = results[0].get(i), results[1].get(i)
        if a != b:
            differ += 1
            print(f"DIFF {f}\n  A: {a[:600]!r}\n  B: {b[:600]!r}")
    print(f"{len(kept)} messages compared, {differ} differ")
    for m in servers:
        m.logout()


if __name__ == "__main__":
    main()
