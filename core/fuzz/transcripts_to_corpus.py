#!/usr/bin/env python3
"""Builds the starting corpus of the session fuzz targets from testdata/transcripts/.

For every connection of every transcript, what the client sends (the C:/C+: lines, literals
included, placeholders filled in for the fuzz targets' account alice/wonderland) becomes one
corpus file for session_imap or session_pop3, twice: fed as one read (first octet 0) and cut
into 7-octet reads (first octet 7), which is the input format of fuzz_targets/driver.rs.

    python3 core/fuzz/transcripts_to_corpus.py            # writes core/fuzz/corpus/session_*/
"""

import base64
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRANSCRIPTS = ROOT / "testdata" / "transcripts"
CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
USER, PASS = "alice", "wonderland"


def fill(text):
    """Client-side placeholders of conformance/README.md, for the fuzz targets' account."""

    def one(m):
        word = m.group(1).strip()
        if word == "user":
            return USER.encode()
        if word == "pass":
            return PASS.encode()
        if word == "sasl-plain":
            return base64.b64encode(f"\0{USER}\0{PASS}".encode())
        if word.startswith("hex "):
            return bytes.fromhex(word[4:].replace(" ", ""))
        if word.startswith("repeat "):
            _, n, what = word.split(" ", 2)
            return what.encode() * int(n)
        # A value captured from the server (a UIDVALIDITY, a nonce...): any number will do.
        return b"1"

    out = b""
    at = 0
    for m in re.finditer(r"\{\{(.*?)\}\}", text):
        out += text[at : m.start()].encode()
        out += one(m)
        at = m.end()
    return out + text[at:].encode()


def connections(path):
    """Yields (protocol, client octets) per connection of a transcript."""
    protocol = path.parent.name
    sent = {}
    kinds = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("@protocol "):
            protocol = raw.split()[1]
        elif raw.startswith("@open "):
            parts = raw.split()
            current = parts[1]
            kinds[current] = parts[2] if len(parts) > 2 else protocol
            sent.setdefault(current, b"")
        elif raw.startswith("@on "):
            current = raw.split()[1]
        elif raw.startswith("C: ") or raw == "C:" or raw.startswith("C+: "):
            if current is None:
                current = "main"
                kinds[current] = protocol
                sent[current] = b""
            if raw.startswith("C+: "):
                sent[current] += fill(raw[4:])
            else:
                sent[current] += fill(raw[3:]) + b"\r\n"
    for name, data in sent.items():
        if data:
            yield kinds.get(name, protocol), name, data


def main():
    written = 0
    for path in sorted(TRANSCRIPTS.glob("*/*.txt")):
        for protocol, name, data in connections(path):
            target = CORPUS / f"session_{protocol}"
            target.mkdir(parents=True, exist_ok=True)
            for cut in (0, 7):
                (target / f"{path.stem}-{name}-{cut}").write_bytes(bytes([cut]) + data)
                written += 1
    print(f"wrote {written} files under {CORPUS}", file=sys.stderr)


if __name__ == "__main__":
    main()
