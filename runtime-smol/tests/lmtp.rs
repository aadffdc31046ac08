//! LMTP delivery end to end: the real binary, Python's `smtplib.LMTP` over TCP and the Unix
//! socket, `swaks --protocol LMTP`, and the delivered mail read back over IMAP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{have, python, Postfix, Server};

/// An LMTP listener on TCP and a Unix socket, and a second account.
fn lmtp_config() -> &'static str {
    r#"
[[directory.users]]
name = "bob"
secret = "{plain}builder"

[server.listener."lmtp"]
bind = ["127.0.0.1:0"]
path = "lmtp.sock"
socket-mode = 0o660
protocol = "lmtp"
"#
}

/// Delivers one message to two recipients (plus an unknown one), reading one reply per
/// accepted recipient after DATA (RFC 2033 §4.2), then reads both copies over IMAP.
const DELIVER_SCRIPT: &str = r#"
import imaplib, smtplib, sys
where, imap_port, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if where.startswith("/"):
    lmtp = smtplib.LMTP(where)
else:
    lmtp = smtplib.LMTP("127.0.0.1", int(where))
code, text = lmtp.ehlo("mta.test")
assert code == 250, (code, text)
for ext in (b"PIPELINING", b"ENHANCEDSTATUSCODES", b"8BITMIME", b"CHUNKING", b"SIZE"):
    assert ext in text, text
assert lmtp.mail("sender@remote.test")[0] == 250
assert lmtp.rcpt("alice@example.org")[0] == 250
code, text = lmtp.rcpt("nobody@example.org")
assert code == 550 and text.startswith(b"5.1.1"), (code, text)
assert lmtp.rcpt("Bob+nosuchfolder@Example.org")[0] == 250
body = ("Subject: lmtp %s\r\n\r\nline one\r\n.starts with a dot\r\n" % tag).encode()
code, text = lmtp.data(body)
assert code == 250, (code, text)
code2, text2 = lmtp.getreply()
assert code2 == 250 and b"Bob+nosuchfolder" in text2, (code2, text2)
lmtp.quit()
for user, password, rcpt in (("alice", "wonderland", "alice@example.org"),
                             ("bob", "builder", "Bob+nosuchfolder@Example.org")):
    imap = imaplib.IMAP4("127.0.0.1", imap_port)
    imap.login(user, password)
    imap.select("INBOX")
    typ, data = imap.search(None, "SUBJECT", '"lmtp %s"' % tag)
    nums = data[0].split()
    assert len(nums) == 1, (user, data)
    typ, data = imap.fetch(nums[0], "(BODY.PEEK[])")
    raw = data[0][1]
    expected = ("Return-Path: <sender@remote.test>\r\nDelivered-To: %s\r\n" % rcpt).encode() + body
    assert raw == expected, (raw, expected)
    imap.logout()
print("delivered", tag)
"#;

#[test]
fn smtplib_lmtp_delivers_to_two_recipients_over_tcp_and_the_unix_socket() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start(lmtp_config());
    let imap = server.port("imap").to_string();
    let tcp = python(
        DELIVER_SCRIPT,
        &[server.port("lmtp").to_string(), imap.clone(), "tcp".into()],
    );
    assert_eq!(tcp, "delivered tcp\n");
    let socket = server.dir.path().join("lmtp.sock");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660, "{mode:o}");
    let unix = python(
        DELIVER_SCRIPT,
        &[socket.display().to_string(), imap, "unix".into()],
    );
    assert_eq!(unix, "delivered unix\n");
    let log = server.log();
    assert!(log.contains("delivered"), "{log}");
}

/// An IMAP session idling in INBOX hears of a delivery at once (the delivery goes through
/// the store every session watches).
const IDLE_SCRIPT: &str = r#"
import imaplib, smtplib, socket, sys, time
lmtp_port, imap_port = int(sys.argv[1]), int(sys.argv[2])
imap = imaplib.IMAP4("127.0.0.1", imap_port)
imap.login("alice", "wonderland")
imap.select("INBOX")
imap.send(b"i1 IDLE\r\n")
assert imap.readline().startswith(b"+"), "no IDLE continuation"
lmtp = smtplib.LMTP("127.0.0.1", lmtp_port)
lmtp.ehlo("mta.test")
lmtp.mail("sender@remote.test")
lmtp.rcpt("alice@example.org")
sent = time.monotonic()
code, _ = lmtp.data(b"Subject: idle\r\n\r\nwake up\r\n")
assert code == 250
imap.sock.settimeout(1.0)
line = imap.readline()
waited = time.monotonic() - sent
assert line.endswith(b"EXISTS\r\n"), line
assert waited < 1.0, waited
imap.send(b"DONE\r\n")
lmtp.quit()
print("idle ok")
"#;

#[test]
fn an_idling_imap_session_sees_a_delivery_within_a_second() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start(lmtp_config());
    let out = python(
        IDLE_SCRIPT,
        &[
            server.port("lmtp").to_string(),
            server.port("imap").to_string(),
        ],
    );
    assert_eq!(out, "idle ok\n");
}

/// Runs swaks against the server; its transcript (stdout) and whether it succeeded.
fn swaks(args: &[&str]) -> (String, bool) {
    let out = Command::new("swaks")
        .args(["--protocol", "LMTP", "--from", "sender@remote.test"])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

#[test]
fn swaks_edge_cases() {
    if !have("swaks") {
        eprintln!("SKIPPED: swaks is not installed (Debian package swaks)");
        return;
    }
    let server = Server::start(&format!(
        "{}\n[limits]\nimap-max-literal = 2000\n",
        lmtp_config()
    ));
    let port = server.port("lmtp").to_string();
    let socket = server.dir.path().join("lmtp.sock");
    // Pipelined, over the Unix socket, with a dot-stuffed body line.
    let (out, ok) = swaks(&[
        "--socket",
        &socket.display().to_string(),
        "--to",
        "alice@example.org",
        "--pipeline",
        "--body",
        ".leading dot",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("250 2.0.0 <alice@example.org> Delivered"),
        "{out}"
    );
    // An unknown recipient is refused with the enhanced code, and nothing is sent.
    let (out, ok) = swaks(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--to",
        "nobody@example.org",
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("550 5.1.1 <nobody@example.org>"), "{out}");
    // A message over the limit (2000 octets here) is read to its end and refused after
    // DATA with 552 5.3.4 for the recipient; the server goes on serving.
    let big = "x".repeat(5000);
    let (out, ok) = swaks(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--to",
        "alice@example.org",
        "--body",
        &big,
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("552 5.3.4"), "{out}");
    assert!(out.contains("221 2.0.0"), "{out}");
}

/// Sends one message over SMTP to Postfix for two recipients, then waits (bounded) until
/// IMAP shows it in alice's INBOX and folder `lists`.
const POSTFIX_SCRIPT: &str = r#"
import imaplib, smtplib, sys, time
smtp_port, imap_port = int(sys.argv[1]), int(sys.argv[2])
imap = imaplib.IMAP4("127.0.0.1", imap_port)
imap.login("alice", "wonderland")
imap.create("lists")
s = smtplib.SMTP("127.0.0.1", smtp_port)
s.sendmail("sender@remote.test", ["alice@example.org", "alice+lists@example.org"],
           b"Subject: via postfix\r\n\r\nhello from postfix\r\n")
s.quit()
deadline = time.monotonic() + 20
found = {}
while time.monotonic() < deadline and len(found) < 2:
    for box in ("INBOX", "lists"):
        typ, data = imap.select(box)
        typ, data = imap.search(None, "SUBJECT", '"via postfix"')
        if data[0].split():
            typ, data = imap.fetch(data[0].split()[0], "(BODY.PEEK[])")
            found[box] = data[0][1]
    time.sleep(0.2)
assert b"Delivered-To: alice@example.org\r\n" in found.get("INBOX", b""), found
assert b"hello from postfix" in found["INBOX"], found
print("boxes", " ".join(sorted(found)))
"#;

/// Postfix from Debian's packages, started with its own configuration and queue, accepts a
/// message over SMTP and hands it to tern over LMTP (`virtual_transport = lmtp:inet:…`).
#[test]
fn postfix_delivers_to_tern_over_lmtp() {
    if !Postfix::available() || !have("python3") {
        eprintln!("SKIPPED: needs root, python3 and Postfix (apt-get install postfix)");
        return;
    }
    let server = Server::start(lmtp_config());
    let lmtp = server.ports["lmtp"];
    let postfix = Postfix::start(
        &format!(
            "virtual_mailbox_domains = example.org\nvirtual_transport = lmtp:inet:{lmtp}\n\
             recipient_delimiter = +\n"
        ),
        "",
    );
    let out = postfix.check(|| {
        python(
            POSTFIX_SCRIPT,
            &[
                postfix.smtp_port.to_string(),
                server.port("imap").to_string(),
            ],
        )
    });
    assert_eq!(out, "boxes INBOX lists\n");
}
