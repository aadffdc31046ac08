//! COMPRESS=DEFLATE (RFC 4978) with the real binary: a client compressing with Python's zlib
//! (raw DEFLATE, `wbits=-15`) over plain TCP and over TLS, IDLE pushes arriving through the
//! compressor while the client waits (a sync flush per response burst), and a compression
//! bomb cut off with `* BYE` while the server stays up and small.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{have, proc_status_kib, python, Client, Server};

/// A line-oriented IMAP client that switches to raw DEFLATE on `compress()`.
const CLIENT: &str = r#"
import socket, ssl, sys, zlib

class Conn:
    def __init__(self, port, tls=None):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            ctx = ssl.create_default_context(cafile=tls)
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.s, self.buf, self.z = s, b"", False
        self.wire_in = 0
    def compress(self):
        self.z = True
        self.c = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.d = zlib.decompressobj(-15)
    def send(self, data):
        if self.z:
            data = self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)
    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        self.wire_in += len(d)
        self.buf += self.d.decompress(d) if self.z else d
    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, _, self.buf = self.buf.partition(b"\r\n")
        return l
    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d
    def unit(self):
        # One response with its literals.
        l = self.line()
        while l.endswith(b"}"):
            n = int(l[l.rindex(b"{") + 1:-1])
            l += b"\r\n" + self.exact(n) + self.line()
        return l
    def cmd(self, tag, text):
        self.send(tag + b" " + text + b"\r\n")
        got = []
        while True:
            u = self.unit()
            got.append(u)
            if u.startswith(tag + b" "):
                return got
"#;

const SESSION: &str = r#"
port, tls = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else None)
c = Conn(port, tls)
c.line()
# Not before authentication: BAD, and nothing compressed.
assert c.cmd(b"z0", b"COMPRESS DEFLATE")[-1].startswith(b"z0 BAD"), "unauth"
r = c.cmd(b"a1", b"LOGIN alice wonderland")[-1]
assert b"COMPRESS=DEFLATE" in r, r
assert c.cmd(b"a2", b"COMPRESS LZW")[-1].startswith(b"a2 BAD")
r = c.cmd(b"a3", b"COMPRESS DEFLATE")
assert r == [b"a3 OK DEFLATE active."], r
c.compress()
r = c.cmd(b"a4", b"CAPABILITY")
assert r[0].startswith(b"* CAPABILITY ") and b"COMPRESS=" not in r[0] and b"IDLE" in r[0], r
r = c.cmd(b"a5", b"COMPRESS DEFLATE")[-1]
assert r.startswith(b"a5 NO [COMPRESSIONACTIVE]"), r
body = b"Subject: note\r\n\r\n" + b"Quoted text, quoted again.\r\n" * 40
c.send(b"a6 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
r = c.unit()
assert r.startswith(b"a6 OK [APPENDUID"), r
r = c.cmd(b"a7", b"SELECT INBOX")
assert r[-1].startswith(b"a7 OK [READ-WRITE]"), r
r = c.cmd(b"a8", b"FETCH 1 BODY[]")
assert r[0].startswith(b"* 1 FETCH (") and body in r[0], r[0][:200]
assert r[-1].startswith(b"a8 OK"), r
# A push while idling arrives without the client sending anything: the server flushed.
c.send(b"a9 IDLE\r\n")
assert c.line().startswith(b"+ "), "idle"
other = Conn(port, tls)
other.line()
other.cmd(b"b1", b"LOGIN alice wonderland")
r = other.cmd(b"b2", b"APPEND INBOX {%d+}\r\n" % len(body) + body)
assert r[-1].startswith(b"b2 OK"), r
l = c.line()
assert l.startswith(b"* ") and l.endswith(b" EXISTS"), l
c.send(b"DONE\r\n")
while not c.line().startswith(b"a9 "):
    pass
r = c.cmd(b"a10", b"LOGOUT")
assert r[0].startswith(b"* BYE") and r[-1].startswith(b"a10 OK"), r
try:
    c.fill()
    raise SystemExit("open after LOGOUT")
except (EOFError, OSError):
    pass
print("ok")
"#;

/// `ROUNDS` pieces of 1 MiB of one octet, compressed hard: about 1 KiB each on the wire.
const BOMB: &str = r#"
import time
port, rounds = int(sys.argv[1]), int(sys.argv[2])
c = Conn(port)
c.line()
c.cmd(b"a1", b"LOGIN alice wonderland")
assert c.cmd(b"a2", b"COMPRESS DEFLATE")[-1].startswith(b"a2 OK")
c.compress()
z = zlib.compressobj(9, zlib.DEFLATED, -15)
sent = 0
try:
    for _ in range(rounds):
        piece = z.compress(b"a3 APPEND INBOX " + b"A" * (1 << 20))
        sent += len(piece)
        c.s.sendall(piece)
    tail = z.flush(zlib.Z_SYNC_FLUSH)
    sent += len(tail)
    c.s.sendall(tail)
except OSError:
    pass
got = b""
start = time.time()
try:
    while time.time() - start < 10:
        d = c.s.recv(65536)
        if not d:
            break
        got += c.d.decompress(d)
except OSError:
    pass
print(sent, time.time() - start < 10, got.decode(errors="replace").strip())
"#;

/// Plaintext where compressed input is due: a corrupt stream.
const NOT_COMPRESSED: &str = r#"
c = Conn(int(sys.argv[1]))
c.line()
c.cmd(b"a1", b"LOGIN alice wonderland")
assert c.cmd(b"a2", b"COMPRESS DEFLATE")[-1].startswith(b"a2 OK")
c.compress()
c.s.sendall(b"a3 NOOP\r\n")
print(c.line().decode())
try:
    c.fill()
    print("open")
except (EOFError, OSError):
    print("closed")
"#;

#[test]
fn plaintext_after_compress_is_answered_with_bye() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start("");
    let out = python(
        &format!("{CLIENT}{NOT_COMPRESSED}"),
        &[server.port("imap").to_string()],
    );
    assert_eq!(out, "* BYE corrupt compressed input.\nclosed\n");
}

#[test]
fn python_zlib_client_through_compress_plain_and_tls() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start("");
    let script = format!("{CLIENT}{SESSION}");
    let out = python(&script, &[server.port("imap").to_string()]);
    assert_eq!(out, "ok\n");
    // Compression inside TLS (RFC 4978 §3: compress, then encrypt).
    let out = python(
        &script,
        &[
            server.port("imaps").to_string(),
            server.cert().display().to_string(),
        ],
    );
    assert_eq!(out, "ok\n");
}

#[test]
fn a_compression_bomb_is_cut_off_and_the_server_stays_small() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start("");
    let port = server.port("imap");
    let pid = server.child.id();
    let mut probe = Client::connect(port);
    probe.line().unwrap();
    let idle_kib = proc_status_kib(pid, "VmRSS:");
    let script = format!("{CLIENT}{BOMB}");

    // 8 KiB on the wire, 8 MiB inflated (an 8 MiB line): answered with BYE, then closed.
    let out = python_out(&script, port, 8);
    assert!(out.contains("True * BYE [LIMIT]"), "{out}");

    // About 300 KiB that would inflate to 300 MiB: closed (the BYE may be lost to the reset
    // of the unread rest), the server still answers and has not grown.
    let out = python_out(&script, port, 300);
    let mut words = out.split(' ');
    let sent: usize = words.next().unwrap().parse().unwrap();
    assert!(sent < 400 * 1024, "{out}");
    assert_eq!(words.next(), Some("True"), "still open after 10 s: {out}");
    probe.send("p1 NOOP\r\n");
    assert!(probe.tagged("p1").unwrap().starts_with("p1 OK"));
    let peak_kib = proc_status_kib(pid, "VmHWM:");
    eprintln!("bomb: RSS idle {idle_kib} KiB, peak {peak_kib} KiB");
    assert!(peak_kib < idle_kib + 32 * 1024, "{peak_kib} vs {idle_kib}");
    assert!(server.log().contains("compressed input refused"));
}

fn python_out(script: &str, port: u16, rounds: u32) -> String {
    python(script, &[port.to_string(), rounds.to_string()])
}
