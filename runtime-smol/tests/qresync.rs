//! QRESYNC end to end with the real binary and its durable store (RFC 7162 §3.2.5, §6): a
//! client caches a mailbox and goes offline; another session flags, expunges, moves and
//! appends; the first comes back with SELECT (QRESYNC ...) and, applying only what that
//! answers (VANISHED (EARLIER), FETCH FLAGS) plus a FETCH of the UIDs above its old UIDNEXT,
//! holds exactly what a fresh full FETCH shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{have, python, Server};

/// A hand-written client over a plain socket: imaplib knows nothing of QRESYNC's responses.
const SCRIPT: &str = r#"
import re, socket, sys

class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")
        self.n = 0
        assert self.f.readline().startswith(b"* OK")

    def cmd(self, line, literal=None):
        self.n += 1
        tag = "t%d" % self.n
        if literal is None:
            self.s.sendall(("%s %s\r\n" % (tag, line)).encode())
        else:
            self.s.sendall(("%s %s {%d+}\r\n" % (tag, line, len(literal))).encode() + literal + b"\r\n")
        out = []
        while True:
            l = self.f.readline()
            assert l, "connection closed"
            l = l.decode().rstrip("\r\n")
            if l.startswith(tag + " "):
                assert l.split(" ")[1] == "OK", (line, l, out)
                return out, l
            out.append(l)

def flags(line):
    m = re.search(r"FLAGS \(([^)]*)\)", line)
    return frozenset(f for f in m.group(1).split() if f != "\\Recent")

def uid(line):
    return int(re.search(r"UID (\d+)", line).group(1))

def uids(text):
    out = set()
    for part in text.split(","):
        a, _, b = part.partition(":")
        out.update(range(int(a), int(b or a) + 1))
    return out

def code(lines, name):
    for l in lines:
        m = re.search(r"\[%s (\d+)\]" % name, l)
        if m:
            return int(m.group(1))
    raise AssertionError((name, lines))

port = int(sys.argv[1])

# The client that goes offline caches INBOX.
a = Imap(port)
a.cmd("LOGIN alice wonderland")
out, _ = a.cmd("ENABLE QRESYNC")
assert "* ENABLED QRESYNC" in out, out
for i in range(30):
    a.cmd("APPEND INBOX", ("Subject: m%d\r\n\r\nbody %d\r\n" % (i, i)).encode())
a.cmd("SELECT INBOX")
a.cmd("STORE 1:10 +FLAGS.SILENT (\\Seen)")
out, _ = a.cmd("SELECT INBOX")
validity, modseq, uidnext = code(out, "UIDVALIDITY"), code(out, "HIGHESTMODSEQ"), code(out, "UIDNEXT")
out, _ = a.cmd("UID FETCH 1:* (FLAGS)")
cache = {uid(l): flags(l) for l in out if " FETCH " in l}
assert len(cache) == 30, cache
a.cmd("LOGOUT")

# Meanwhile another session changes the mailbox.
b = Imap(port)
b.cmd("LOGIN alice wonderland")
b.cmd("SELECT INBOX")
b.cmd("UID STORE 3,7,11 +FLAGS.SILENT (\\Flagged $Important)")
b.cmd("UID STORE 2,4 -FLAGS.SILENT (\\Seen)")
b.cmd("UID STORE 5,6,12,20,21 +FLAGS.SILENT (\\Deleted)")
b.cmd("EXPUNGE")
b.cmd("UID MOVE 25 Trash")
b.cmd("APPEND INBOX (\\Draft)", b"Subject: new\r\n\r\nnew\r\n")
b.cmd("UID STORE 7 -FLAGS.SILENT (\\Flagged)")
b.cmd("LOGOUT")

# The first client comes back: QRESYNC from what it knew, known UIDs and a sample of
# message numbers included.
c = Imap(port)
c.cmd("LOGIN alice wonderland")
c.cmd("ENABLE QRESYNC")
known = ",".join(str(u) for u in sorted(cache))
out, tagged = c.cmd("SELECT INBOX (QRESYNC (%d %d %s (1,5 1,5)))" % (validity, modseq, known))
assert not any(re.match(r"\* \d+ EXPUNGE", l) for l in out), out
vanished = [l for l in out if l.startswith("* VANISHED")]
assert all(l.startswith("* VANISHED (EARLIER) ") for l in vanished), vanished
for l in vanished:
    for u in uids(l.split(" ", 3)[3]):
        cache.pop(u, None)
changed = 0
for l in out:
    if " FETCH " in l:
        assert "MODSEQ (" in l and "UID " in l, l
        if uid(l) in cache:
            cache[uid(l)] = flags(l)
            changed += 1
assert code(out, "HIGHESTMODSEQ") > modseq, out
out, _ = c.cmd("UID FETCH %d:* (FLAGS)" % uidnext)
for l in out:
    if " FETCH " in l and uid(l) >= uidnext:
        cache[uid(l)] = flags(l)

# What a client that forgot everything sees.
out, _ = c.cmd("UID FETCH 1:* (FLAGS)")
fresh = {uid(l): flags(l) for l in out if " FETCH " in l}
assert cache == fresh, (sorted(cache.items()), sorted(fresh.items()))
c.cmd("LOGOUT")
print("resynchronised: %d vanished lines, %d changed, %d messages" % (len(vanished), changed, len(fresh)))
"#;

#[test]
fn qresync_after_another_session_flags_and_expunges_reaches_the_full_state() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start("");
    let out = python(SCRIPT, &[server.port("imap").to_string()]);
    // 30 cached; 6 gone (5 expunged, 1 moved), 1 added: 25. Flags changed on 3, 7, 11, 2,
    // 4 (7 twice); the expunged ones are not reported as changed.
    assert_eq!(
        out,
        "resynchronised: 1 vanished lines, 5 changed, 25 messages\n"
    );
}
