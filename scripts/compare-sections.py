#!/usr/bin/env python3
"""Compares what two IMAP servers answer for every body section of messages that contain
message/rfc822 parts (RFC 9051 §6.4.5 section numbering).

For each message: BODYSTRUCTURE, BODY[HEADER], BODY[TEXT], and for every section number that
the reference server's BODYSTRUCTURE yields (nested messages included, at any depth):
BODY[n], BODY[n.HEADER], BODY[n.TEXT], BODY[n.MIME], BINARY[n] and BINARY.SIZE[n], each in a
FETCH of its own, compared on the untagged data and the tagged status (OK/NO/BAD).

Used during development to check tern against Dovecot; the corpus is not part of the project.
Usage:

  compare-sections.py CORPUS_DIR REF_HOST:PORT:USER:PASS OTHER_HOST:PORT:USER:PASS
                      [--limit N] [--all] [--verbose]

Only corpus files that mention message/rfc822 or multipart/digest are used, unless --all.
A few messages written here (the RFC 9051 §6.4.5 example structure, a message whose own type
is message/rfc822 around a digest, two levels of encapsulation) are always added first.
Both servers get a fresh mailbox "sections-<pid>". Prints each differing answer and a summary.
"""
import os
import re
import socket
import sys

SYNTHETIC = [
    # The structure of the RFC 9051 §6.4.5 example.
    b"""From: a@example.org
Subject: rfc 9051 example
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=o

outer preamble
--o
Content-Type: text/plain

part 1
--o
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

cGFydCAy
--o
Content-Type: message/rfc822

Subject: part 3
Content-Type: multipart/mixed; boundary=t

--t
Content-Type: text/plain

part 3.1
--t
Content-Type: application/octet-stream

part 3.2
--t--
--o
Content-Type: multipart/mixed; boundary=f

--f
Content-Type: image/gif
Content-Transfer-Encoding: base64

R0lGODdh
--f
Content-Type: message/rfc822

Subject: part 4.2
Content-Type: multipart/mixed; boundary=g

--g
Content-Type: text/plain

part 4.2.1
--g
Content-Type: multipart/alternative; boundary=h

--h
Content-Type: text/plain

part 4.2.2.1
--h
Content-Type: text/richtext

part 4.2.2.2
--h--
--g--
--f--
--o--
epilogue
""",
    # A message whose own type is message/rfc822, around a digest.
    b"""Subject: outer
Content-Type: message/rfc822

Subject: digest
Content-Type: multipart/digest; boundary=d

preamble
--d

Subject: one

first
--d
Content-Type: text/plain

second
--d--
epilogue
""",
    # Two levels of encapsulation, the innermost a single part.
    b"""Subject: level 0
Content-Type: multipart/mixed; boundary=a

--a
Content-Type: text/plain

zero
--a
Content-Type: message/rfc822
Content-Description: level 1

Subject: level 1
Content-Type: message/rfc822

Subject: level 2
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9
--a--
""",
    # message/rfc822 at the top whose inner message is single-part, and a digest in a multipart.
    b"""Subject: wrapper
Content-Type: message/rfc822

Subject: inner
Content-Type: text/plain

inner body
""",
    b"""Subject: mixed digest
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: multipart/digest; boundary=dd

--dd

Subject: d1
Content-Type: multipart/alternative; boundary=alt

--alt
Content-Type: text/plain

d1 plain
--alt
Content-Type: text/html

<p>d1</p>
--alt--
--dd

Subject: d2

d2 body
--dd--
--m--
""",
]


def crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


class Conn:
    """A minimal IMAP client that keeps each response's octets exactly."""

    def __init__(self, spec):
        self.spec = spec
        self.selected = None
        self.connect()

    def connect(self):
        host, port, self.user, self.password = self.spec.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.file = self.sock.makefile("rb")
        self.n = 0
        self.file.readline()
        self.cmd(f"LOGIN {self.user} {self.password}".encode())

    def reconnect(self):
        self.sock.close()
        self.connect()
        if self.selected:
            self.cmd(b"SELECT " + self.selected)

    def read_response(self):
        out = b""
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("connection closed")
            out += line
            m = re.search(rb"~?\{(\d+)\+?\}\r\n$", line)
            if not m:
                return out
            out += self.file.read(int(m.group(1)))

    def cmd(self, line, literal=None):
        self.n += 1
        tag = b"c%d" % self.n
        if literal is not None:
            self.sock.sendall(tag + b" " + line + b" {%d}\r\n" % len(literal))
            cont = self.read_response()
            if not cont.startswith(b"+"):
                return [], cont
            self.sock.sendall(literal + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + line + b"\r\n")
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag + b" "):
                return untagged, r
            untagged.append(r)


def tokens(data):
    """Tokens of an IMAP response: '(' ')' and byte strings (None for NIL)."""
    i = 0
    while i < len(data):
        c = data[i:i + 1]
        if c in b" \r\n":
            i += 1
        elif c in b"()":
            yield c
            i += 1
        elif c == b'"':
            j = i + 1
            s = bytearray()
            while data[j:j + 1] != b'"':
                if data[j:j + 1] == b"\\":
                    j += 1
                s += data[j:j + 1]
                j += 1
            yield bytes(s)
            i = j + 1
        elif c in b"{~":
            m = re.match(rb"~?\{(\d+)\}\r\n", data[i:])
            n = int(m.group(1))
            start = i + m.end()
            yield data[start:start + n]
            i = start + n
        else:
            m = re.match(rb"[^ ()\r\n]+", data[i:])
            atom = m.group(0)
            yield None if atom == b"NIL" else atom
            i += m.end()


def parse(data):
    stack = [[]]
    for t in tokens(data):
        if t == b"(":
            stack.append([])
        elif t == b")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    return stack[0]


def bodystructure(untagged):
    for r in untagged:
        items = parse(r)
        # * n FETCH (BODYSTRUCTURE (...))
        if len(items) >= 4 and isinstance(items[3], list):
            fetch = items[3]
            for k in range(0, len(fetch) - 1, 2):
                if fetch[k] == b"BODYSTRUCTURE":
                    return fetch[k + 1]
    return None


def is_multipart(b):
    return isinstance(b, list) and b and isinstance(b[0], list)


def is_message(b):
    return (
        isinstance(b, list)
        and len(b) > 8
        and isinstance(b[0], bytes)
        and b[0].lower() == b"message"
        and (b[1] or b"").lower() in (b"rfc822", b"global")
        and isinstance(b[8], list)
    )


def sections(body):
    """Every section number of a message with this BODYSTRUCTURE."""
    out = []

    def part(b, path):
        out.append(path)
        if is_multipart(b):
            children(b, path)
        elif is_message(b):
            message(b[8], path)

    def message(b, path):
        if is_multipart(b):
            children(b, path)
        else:
            part(b, path + [1])

    def sub_parts(b):
        # A multipart is (part part ... subtype [ext...]): the parts are the leading lists.
        parts = []
        for x in b:
            if not isinstance(x, list):
                break
            parts.append(x)
        return parts

    def children(b, path):
        for i, c in enumerate(sub_parts(b)):
            part(c, path + [i + 1])

    message(body, [])
    return out


def answer(conn, what):
    try:
        untagged, tagged = conn.cmd(b"FETCH 1 (" + what + b")")
    except (EOFError, OSError):
        # Dovecot drops the connection when BINARY meets base64 cut short.
        conn.reconnect()
        return "DISCONNECTED", b""
    status = tagged.split(b" ")[1].decode()
    # Dovecot precedes a failed FETCH with "* n FETCH (UID n)"; keep only data lines.
    data = [u for u in untagged if b"FETCH" in u and not re.match(rb"\* \d+ FETCH \(UID \d+\)\r\n$", u)]
    return status, b"".join(data)


def main():
    args = sys.argv[1:]
    verbose = "--verbose" in args
    use_all = "--all" in args
    limit = None
    if "--limit" in args:
        limit = int(args[args.index("--limit") + 1])
    corpus, ref_spec, other_spec = [a for a in args if not a.startswith("--") and not a.isdigit()][:3]
    files = []
    for root, _, names in os.walk(corpus):
        if "LICENSES" in root:
            continue
        for n in sorted(names):
            if n in ("README.md", "INDEX.tsv"):
                continue
            path = os.path.join(root, n)
            data = open(path, "rb").read()
            if use_all or re.search(rb"message/rfc822|multipart/digest", data, re.I):
                files.append(path)
    files.sort()
    if limit:
        files = files[:limit]
    messages = [(f"synthetic-{i}", crlf(m)) for i, m in enumerate(SYNTHETIC)]
    messages += [(f, crlf(open(f, "rb").read())) for f in files]
    box = f"sections-{os.getpid()}".encode()
    ref, other = Conn(ref_spec), Conn(other_spec)
    counts = {"same": 0, "differ": 0, "literal8": 0}
    per_kind = {}
    msg_same = msg_differ = 0
    for name, data in messages:
        for c in (ref, other):
            # Dovecot disconnects a session whose selected mailbox is deleted.
            c.cmd(b"UNSELECT")
            c.cmd(b"DELETE " + box)
            c.cmd(b"CREATE " + box)
        ok = [c.cmd(b"APPEND " + box, data)[1].split(b" ")[1] == b"OK" for c in (ref, other)]
        if not all(ok):
            print(f"APPEND {name}: {ok}")
            continue
        for c in (ref, other):
            c.cmd(b"SELECT " + box)
            c.selected = box
        untagged, _ = ref.cmd(b"FETCH 1 (BODYSTRUCTURE)")
        body = bodystructure(untagged)
        if body is None:
            print(f"{name}: no BODYSTRUCTURE from the reference")
            continue
        whats = [b"BODYSTRUCTURE", b"BODY.PEEK[HEADER]", b"BODY.PEEK[TEXT]"]
        for path in sections(body):
            n = ".".join(str(p) for p in path).encode()
            whats += [
                b"BODY.PEEK[" + n + b"]",
                b"BODY.PEEK[" + n + b".HEADER]",
                b"BODY.PEEK[" + n + b".TEXT]",
                b"BODY.PEEK[" + n + b".MIME]",
                b"BINARY.PEEK[" + n + b"]",
                b"BINARY.SIZE[" + n + b"]",
            ]
        differs = False
        for what in whats:
            a, b = answer(ref, what), answer(other, what)
            kind = re.sub(rb"\[\d+(\.\d+)*", b"[n", what).decode()
            k = per_kind.setdefault(kind, [0, 0, 0])
            if a == b:
                counts["same"] += 1
                k[0] += 1
            elif (a[0], a[1].replace(b"~{", b"{")) == (b[0], b[1].replace(b"~{", b"{")):
                # Only literal8 against literal for 8-bit data without NUL (RFC 3516 §4.3
                # leaves that to the server).
                counts["literal8"] += 1
                k[2] += 1
            else:
                counts["differ"] += 1
                k[1] += 1
                differs = True
                # Around the first octet that differs.
                at = next(
                    (i for i, (x, y) in enumerate(zip(a[1], b[1])) if x != y),
                    min(len(a[1]), len(b[1])),
                )
                lo = max(0, at - 150)
                print(
                    f"DIFF {name} {what.decode()} (from octet {lo})\n"
                    f"  ref:   {a[0]} {a[1][lo:at + 250]!r}\n"
                    f"  other: {b[0]} {b[1][lo:at + 250]!r}"
                )
            if verbose:
                print(f"{name} {what.decode()}: {'same' if a == b else 'DIFFERENT'}")
        if differs:
            msg_differ += 1
        else:
            msg_same += 1
    for c in (ref, other):
        c.cmd(b"UNSELECT")
        c.cmd(b"DELETE " + box)
        c.cmd(b"LOGOUT")
    print(f"{len(messages)} messages: {msg_same} identical in every answer, {msg_differ} with differences")
    total = sum(counts.values())
    print(
        f"{total} answers: {counts['same']} identical, {counts['literal8']} identical but for"
        f" literal8 against literal, {counts['differ']} different"
    )
    for kind, (s, d, l8) in sorted(per_kind.items()):
        print(f"  {kind}: {s} identical, {l8} literal8/literal, {d} different")


if __name__ == "__main__":
    main()
