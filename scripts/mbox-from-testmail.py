#!/usr/bin/env python3
"""Writes an mboxrd file of N messages taken in turn from a folder of message files (the
shared testmail corpus), for measuring `tern import` / `tern export`. The messages are read,
never copied anywhere else.

Usage: scripts/mbox-from-testmail.py [--unique] TESTMAIL_DIR N OUT.mbox

--unique prepends a header line `X-Bench-Seq: <i>` to message i, so that no two are the
same octets (tern's store keeps one copy of identical bodies, which would flatter a
measurement made of repeats).

Each message is written as a Unix mbox writer would (and as `tern export` writes): LF line
ends (CR LF pairs become LF until none is left), a final line end added when missing, lines
matching `>*From ` quoted with one more `>`, a `From ` line naming the first Return-Path
address of the header (else MAILER-DAEMON) and a date one minute after the previous one,
then an empty line. Such a file goes through import and export byte for byte.
"""
import os
import sys
import time


def sender(message: bytes) -> str:
    for line in message.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            break
        if len(line) >= 12 and line[:12].lower() == b"return-path:":
            value = line[12:].decode("utf-8", "replace").strip()
            if value.startswith("<"):
                value = value[1:]
            if value.endswith(">"):
                value = value[:-1]
            ok = value and not any(c.isspace() or ord(c) < 32 or 127 <= ord(c) <= 159 for c in value)
            return value if ok else "MAILER-DAEMON"
    return "MAILER-DAEMON"


def main() -> None:
    args = sys.argv[1:]
    unique = args[:1] == ["--unique"]
    if unique:
        args = args[1:]
    src, n, out = args[0], int(args[1]), args[2]
    files = []
    for root, _, names in os.walk(src):
        for name in sorted(names):
            if root == src and name in ("INDEX.tsv", "README.md", ".gitattributes"):
                continue
            if "LICENSES" in root.split(os.sep):
                continue
            files.append(os.path.join(root, name))
    files.sort()
    messages = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            continue
        if not data.endswith(b"\n"):
            data += b"\n"
        while b"\r\n" in data:
            data = data.replace(b"\r\n", b"\n")
        lines = data.split(b"\n")[:-1]
        body = b"".join(
            (b">" + l if l.lstrip(b">").startswith(b"From ") else l) + b"\n" for l in lines
        )
        messages.append((sender(data), body))
    start = 1_700_000_000
    with open(out, "wb") as f:
        for i in range(n):
            who, body = messages[i % len(messages)]
            date = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(start + 60 * i))
            f.write(b"From %s %s\n" % (who.encode(), date.encode()))
            if unique:
                f.write(b"X-Bench-Seq: %d\n" % i)
            f.write(body)
            f.write(b"\n")
    print(f"{n} messages from {len(messages)} files into {out}")


if __name__ == "__main__":
    main()
