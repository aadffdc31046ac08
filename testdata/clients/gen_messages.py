#!/usr/bin/env python3
"""Writes N varied test messages (CRLF line ends) into a directory, for client round trips.

Deterministic for a given N: plain ASCII, UTF-8 8bit bodies, quoted-printable, multipart
alternative, base64 attachments, nested message/rfc822, lines starting with "." (POP3
byte-stuffing), long lines, and encoded-word headers. Usage: gen_messages.py DIR [N]
"""
import base64
import os
import random
import sys


def message(i, rnd):
    kind = i % 7
    date = f"Mon, {1 + i % 28} Mar 2026 {i % 24:02d}:{i % 60:02d}:00 +0000"
    head = [
        f"From: Sender {i} <sender{i}@example.org>",
        f"To: alice@example.com",
        f"Date: {date}",
        f"Message-ID: <msg{i}@example.org>",
    ]
    words = " ".join(rnd.choice(["alpha", "beta", "gamma", "delta", "epsilon"]) for _ in range(12))
    if kind == 0:
        head.append(f"Subject: plain {i}")
        body = [f"Hello {i}.", words, ".a line that starts with a dot", ".", "end"]
        return head, body
    if kind == 1:
        head += [f"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_{i}?=", "MIME-Version: 1.0",
                 "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        return head, [f"Schöne Grüße {i} — ünïcödé", words]
    if kind == 2:
        head += [f"Subject: qp {i}", "MIME-Version: 1.0",
                 "Content-Type: text/plain; charset=iso-8859-1",
                 "Content-Transfer-Encoding: quoted-printable"]
        return head, ["Caf=E9 cr=E8me " + str(i), "soft=", "break"]
    if kind == 3:
        head += [f"Subject: alternative {i}", "MIME-Version: 1.0",
                 "Content-Type: multipart/alternative; boundary=\"alt" + str(i) + "\""]
        body = ["preamble", f"--alt{i}", "Content-Type: text/plain", "", words,
                f"--alt{i}", "Content-Type: text/html", "", f"<p>{words}</p>", f"--alt{i}--", ""]
        return head, body
    if kind == 4:
        data = bytes(rnd.randrange(256) for _ in range(300 + i))
        b64 = base64.encodebytes(data).decode().rstrip("\n").split("\n")
        head += [f"Subject: attachment {i}", "MIME-Version: 1.0",
                 "Content-Type: multipart/mixed; boundary=mix" + str(i)]
        body = [f"--mix{i}", "Content-Type: text/plain", "", "see attachment", f"--mix{i}",
                "Content-Type: application/octet-stream; name=\"data.bin\"",
                "Content-Disposition: attachment; filename=\"data.bin\"",
                "Content-Transfer-Encoding: base64", ""] + b64 + [f"--mix{i}--"]
        return head, body
    if kind == 5:
        head += [f"Subject: forwarded {i}", "MIME-Version: 1.0",
                 "Content-Type: multipart/mixed; boundary=fw" + str(i)]
        body = [f"--fw{i}", "Content-Type: text/plain", "", "forwarding", f"--fw{i}",
                "Content-Type: message/rfc822", "", "From: inner@example.net",
                f"Subject: inner {i}", "", "inner body", f"--fw{i}--"]
        return head, body
    head.append(f"Subject: long line {i}")
    return head, ["x" * (900 + i), words]


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(20261126)
    for i in range(n):
        head, body = message(i, rnd)
        text = "\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body) + "\r\n"
        with open(os.path.join(out, f"{i:04d}.eml"), "wb") as f:
            f.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
