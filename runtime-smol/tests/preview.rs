//! PREVIEW (RFC 8970) and SAVEDATE (RFC 8514) through Python's imaplib against the real binary
//! and its SQLite store: previews of plain, quoted-printable Latin-1, HTML, attachment-only
//! and large (stored as a file) messages, with and without LAZY, and the same after a restart;
//! save dates after APPEND and COPY, and the SAVED* search keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{have, python, Server};

const SCRIPT: &str = r#"
import imaplib, re, sys, time
port, phase = int(sys.argv[1]), sys.argv[2]
m = imaplib.IMAP4("127.0.0.1", port)
m.login("alice", "wonderland")
caps = m.capability()[1][0].split()
assert b"PREVIEW" in caps and b"SAVEDATE" in caps, caps

def append(raw, date=None):
    when = imaplib.Time2Internaldate(date) if date else None
    typ, data = m.append("INBOX", None, when, raw.replace(b"\n", b"\r\n"))
    assert typ == "OK", data

if phase == "first":
    append(b"Subject: plain\n\nHello  there,\n\n  see you at noon.\n-- \nsig\n", date=946720800)
    append(b"Subject: latin\nContent-Type: text/plain; charset=iso-8859-1\n"
           b"Content-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe aus K=F6ln\n")
    append(b"Subject: html\nContent-Type: text/html\n\n"
           b"<html><style>x{}</style><p>Fish &amp; chips</p></html>\n")
    append(b"Subject: pdf\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
           b"Content-Type: application/pdf\nContent-Disposition: attachment\n"
           b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n")
    append(b"Subject: big\n\nBig start " + b"filler words " * 30000 + b"\n")

m.select("INBOX")

def items(spec):
    # Each message's response as one byte string, literals inlined.
    typ, data = m.fetch("1:*", spec)
    assert typ == "OK", data
    out, cur = [], b""
    for part in data:
        if isinstance(part, tuple):
            cur += part[0] + part[1]
        else:
            cur += part
            if cur.endswith(b")"):
                out.append(cur)
                cur = b""
    return out

def preview(resp):
    m_ = re.search(rb'PREVIEW (?:"((?:[^"\\]|\\.)*)"|\{(\d+)\}(?:\r\n)?|(NIL))', resp)
    assert m_, resp
    if m_.group(3):
        return None
    if m_.group(1) is not None:
        return m_.group(1).decode("utf-8")
    return resp[m_.end():m_.end() + int(m_.group(2))].decode("utf-8")

big = ("Big start " + "filler words " * 15)[:200].rstrip()
want = ["Hello there, see you at noon.", "Grüße aus Köln", "Fish & chips", "", big]
for spec in ["(PREVIEW)", "(PREVIEW (LAZY))", "(UID PREVIEW)"]:
    got = [preview(r) for r in items(spec)]
    assert got[:5] == want, (spec, got)
print(phase, "previews ok")

dates = [re.search(rb'SAVEDATE "([^"]+)"', r).group(1) for r in items("(INTERNALDATE SAVEDATE)")]
assert all(b"2000" not in d for d in dates), dates
typ, data = m.search(None, "BEFORE", "1-Jan-2001")
assert data == ([b"1"] if phase == "first" else [b"1 6"]), data
typ, data = m.search(None, "SAVEDBEFORE", "1-Jan-2001")
assert data == [b""], data
typ, data = m.search(None, "SAVEDSINCE", time.strftime("%d-%b-%Y", time.gmtime(time.time() - 86400)))
assert len(data[0].split()) >= 5, data
if phase == "first":
    typ, data = m.copy("1", "INBOX")
    assert typ == "OK", data
    last = items("(INTERNALDATE SAVEDATE)")[-1]
    assert b"2000" in last and b'SAVEDATE "' in last, last
print(phase, "savedates ok")
m.logout()
"#;

#[test]
fn python_imaplib_fetches_previews_and_save_dates() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    let config = dir.path().join("tern.toml");
    std::fs::write(
        &config,
        common::config_text("").replace(
            "path = \"data\"",
            &format!("path = \"{}\"", storage.display()),
        ),
    )
    .unwrap();
    let mut server = Server::start_with(tempfile::tempdir().unwrap(), &config);
    let out = python(SCRIPT, &[server.port("imap").to_string(), "first".into()]);
    assert_eq!(out, "first previews ok\nfirst savedates ok\n");
    server.terminate();
    // After a restart the previews come from the database, not from memory.
    let server = Server::start_with(tempfile::tempdir().unwrap(), &config);
    let out = python(SCRIPT, &[server.port("imap").to_string(), "again".into()]);
    assert_eq!(out, "again previews ok\nagain savedates ok\n");
}
