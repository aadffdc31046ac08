//! Real clients (Python's imaplib and poplib) against the real binary: plain on loopback,
//! STARTTLS/STLS, implicit TLS, and a clean LOGOUT/QUIT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{have, python, Client, Server};

const IMAP_SCRIPT: &str = r#"
import imaplib, ssl, sys
plain, tls, cert = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cert)

m = imaplib.IMAP4("127.0.0.1", plain)
assert "STARTTLS" in m.capabilities, m.capabilities
typ, data = m.login("alice", "wonderland")
assert typ == "OK", (typ, data)
assert m.noop()[0] == "OK"
assert m.logout()[0] == "BYE"
print("plain ok")

m = imaplib.IMAP4("127.0.0.1", plain)
m.starttls(ssl_context=ctx)
assert "STARTTLS" not in m.capabilities and "AUTH=PLAIN" in m.capabilities, m.capabilities
assert m.login("ALICE", "wonderland")[0] == "OK"
assert m.logout()[0] == "BYE"
print("starttls ok")

m = imaplib.IMAP4_SSL("localhost", tls, ssl_context=ctx)
try:
    m.login("alice", "wrong")
    raise SystemExit("wrong password accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
m.authenticate("PLAIN", lambda _: b"\0alice\0wonderland")
assert m.state == "AUTH"
assert m.logout()[0] == "BYE"
print("implicit tls ok")
"#;

const POP3_SCRIPT: &str = r#"
import poplib, ssl, sys
plain, tls, cert = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cert)

p = poplib.POP3("127.0.0.1", plain)
assert "STLS" in p.capa()
assert p.user("alice").startswith(b"+OK")
assert p.pass_("wonderland").startswith(b"+OK")
assert p.quit().startswith(b"+OK")
print("plain ok")

p = poplib.POP3("127.0.0.1", plain)
p.stls(ctx)
caps = p.capa()
assert "STLS" not in caps and "USER" in caps, caps
p.user("alice"); p.pass_("wonderland")
assert p.quit().startswith(b"+OK")
print("stls ok")

p = poplib.POP3_SSL("localhost", tls, context=ctx)
p.user("alice")
try:
    p.pass_("wrong")
    raise SystemExit("wrong password accepted")
except poplib.error_proto as e:
    assert "[AUTH]" in str(e), e
p.user("alice"); p.pass_("wonderland")
assert p.quit().startswith(b"+OK")
print("implicit tls ok")
"#;

fn fast_failures() -> &'static str {
    "[auth]\nfailure-delay = 0.1\n"
}

#[test]
fn python_imaplib_plain_starttls_and_implicit_tls() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start(fast_failures());
    let out = python(
        IMAP_SCRIPT,
        &[
            server.port("imap").to_string(),
            server.port("imaps").to_string(),
            server.cert().display().to_string(),
        ],
    );
    assert_eq!(out, "plain ok\nstarttls ok\nimplicit tls ok\n");
    let log = server.log();
    assert!(log.contains("authentication succeeded"), "{log}");
    assert!(log.contains("authentication failed"), "{log}");
    assert!(
        !log.contains("wonderland"),
        "the password reached the log:\n{log}"
    );
}

#[test]
fn python_poplib_plain_stls_and_implicit_tls() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start(fast_failures());
    let out = python(
        POP3_SCRIPT,
        &[
            server.port("pop3").to_string(),
            server.port("pop3s").to_string(),
            server.cert().display().to_string(),
        ],
    );
    assert_eq!(out, "plain ok\nstls ok\nimplicit tls ok\n");
}

#[test]
fn sigterm_says_bye_to_open_sessions_and_exits_zero() {
    let mut server = Server::start("");
    let mut imap = Client::connect(server.port("imap"));
    assert!(imap.line().unwrap().starts_with("* OK [CAPABILITY "));
    let mut pop = Client::connect(server.port("pop3"));
    assert_eq!(pop.line().unwrap(), "+OK tern ready.");
    let status = server
        .terminate()
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(imap.line().unwrap(), "* BYE Server shutting down.");
    assert!(imap.closed());
    assert_eq!(pop.line().unwrap(), "-ERR Server shutting down.");
}

#[test]
fn autologout_timer_closes_idle_connections() {
    // A short timeout stands in for RFC 9051 §5.4's 30 minutes.
    let server = Server::start("[timeouts]\nimap-autologout = 1\npop3-inactivity = 1\n");
    let mut imap = Client::connect(server.port("imap"));
    imap.line().unwrap();
    assert_eq!(imap.line().unwrap(), "* BYE Autologout; idle for too long.");
    assert!(imap.closed());
    let mut pop = Client::connect(server.port("pop3"));
    pop.line().unwrap();
    assert!(pop.closed());
}

const INJECTION_SCRIPT: &str = r#"
import socket, ssl, sys
port, cert, proto = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cert)
s = socket.create_connection(("127.0.0.1", port), timeout=20)
f = s.makefile("rb")
f.readline()
if proto == "imap":
    s.sendall(b"a STARTTLS\r\nb NOOP\r\n")
    assert f.readline() == b"a OK Begin TLS negotiation now.\r\n"
else:
    s.sendall(b"STLS\r\nUSER injected\r\n")
    assert f.readline() == b"+OK Begin TLS negotiation now.\r\n"
t = ctx.wrap_socket(s, server_hostname="localhost")
g = t.makefile("rb")
t.sendall(b"c NOOP\r\n" if proto == "imap" else b"PASS x\r\n")
# The pipelined plaintext command must not have run: the first answer is to the new one.
print(g.readline().decode().strip())
"#;

#[test]
fn starttls_and_stls_discard_pipelined_plaintext() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start("");
    let cert = server.cert().display().to_string();
    let imap = python(
        INJECTION_SCRIPT,
        &[server.port("imap").to_string(), cert.clone(), "imap".into()],
    );
    assert_eq!(imap, "c OK NOOP completed.\n");
    // Had the injected USER run, PASS would try that user instead of lacking one.
    let pop = python(
        INJECTION_SCRIPT,
        &[server.port("pop3").to_string(), cert, "pop3".into()],
    );
    assert_eq!(pop, "-ERR No user name given.\n");
}

/// The POP3 `\Seen` of a retrieved message is written when the session ends, by QUIT or by a
/// dropped connection, and the maildrop lock is free afterwards; nothing about it is a
/// driver error in the log.
#[test]
fn pop3_retr_marks_seen_at_the_end_of_the_session() {
    let server = Server::start("");
    let mut imap = Client::connect(server.port("imap"));
    imap.line().unwrap();
    imap.send("a LOGIN alice wonderland\r\n");
    assert!(imap.line().unwrap().starts_with("a OK"));
    // IMAP4rev2: no \Recent to tell apart from the flags under test.
    imap.send("e ENABLE IMAP4rev2\r\n");
    assert_eq!(imap.line().unwrap(), "* ENABLED IMAP4rev2");
    assert!(imap.line().unwrap().starts_with("e OK"));
    for n in 1..=2 {
        let body = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
        imap.send(&format!(
            "b{n} APPEND INBOX {{{}+}}\r\n{body}\r\n",
            body.len()
        ));
        assert!(imap.line().unwrap().starts_with(&format!("b{n} OK")));
    }
    let flags = |imap: &mut Client| {
        imap.send("c EXAMINE INBOX\r\n");
        while !imap.line().unwrap().starts_with("c OK") {}
        imap.send("d FETCH 1:2 (FLAGS)\r\n");
        let mut lines = Vec::new();
        loop {
            let line = imap.line().unwrap();
            if line.starts_with("d OK") {
                return lines;
            }
            lines.push(line);
        }
    };
    let pop_login = |server: &Server| {
        let mut pop = Client::connect(server.port("pop3"));
        pop.line().unwrap();
        pop.send("USER alice\r\nPASS wonderland\r\n");
        pop.line().unwrap();
        let answer = pop.line().unwrap();
        (pop, answer)
    };
    // RETR 1, then the connection drops without QUIT.
    let (mut pop, answer) = pop_login(&server);
    assert!(answer.starts_with("+OK"), "{answer}");
    pop.send("RETR 1\r\n");
    while pop.line().unwrap() != "." {}
    drop(pop);
    // The lock is released once the flag is written; the next login may come in before.
    let mut again = None;
    for _ in 0..100 {
        let (pop, answer) = pop_login(&server);
        if answer.starts_with("+OK") {
            again = Some(pop);
            break;
        }
        assert!(answer.starts_with("-ERR [IN-USE]"), "{answer}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut pop = again.expect("the maildrop stayed locked");
    assert_eq!(
        flags(&mut imap),
        ["* 1 FETCH (FLAGS (\\Seen))", "* 2 FETCH (FLAGS ())"]
    );
    // RETR 2 and QUIT: the UPDATE transaction writes it before +OK.
    pop.send("RETR 2\r\n");
    while pop.line().unwrap() != "." {}
    pop.send("QUIT\r\n");
    assert!(pop.line().unwrap().starts_with("+OK"));
    assert_eq!(
        flags(&mut imap),
        ["* 1 FETCH (FLAGS (\\Seen))", "* 2 FETCH (FLAGS (\\Seen))"]
    );
    // A session that retrieves nothing and drops: only the lock to release.
    let (pop, answer) = pop_login(&server);
    assert!(answer.starts_with("+OK"), "{answer}");
    drop(pop);
    let mut free = false;
    for _ in 0..100 {
        let (mut pop, answer) = pop_login(&server);
        if answer.starts_with("+OK") {
            pop.send("QUIT\r\n");
            assert!(pop.line().unwrap().starts_with("+OK"));
            free = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(free, "the maildrop stayed locked");
    let log = server.log();
    assert!(!log.contains("misuse"), "{log}");
}

/// `[storage] backend` picks the implementation of the storage contract: with "memory" the
/// same server runs on `SharedMemStore`, changes reach other sessions through its change
/// feed, and nothing is written under the storage folder.
#[test]
fn the_memory_backend_serves_through_the_same_contract() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(
        &config,
        common::config_text("").replace("path = \"data\"", "path = \"data\"\nbackend = \"memory\""),
    )
    .unwrap();
    let server = Server::start_with(dir, &config);
    let port = server.port("imap");
    let tagged = |c: &mut Client, tag: &str| loop {
        let line = c.line().unwrap();
        if line.starts_with(&format!("{tag} ")) {
            return line;
        }
    };
    let mut idler = Client::connect(port);
    idler.line().unwrap();
    idler.send("a LOGIN alice wonderland\r\nb SELECT INBOX\r\n");
    assert!(tagged(&mut idler, "b").starts_with("b OK"));
    idler.send("c IDLE\r\n");
    assert!(idler.line().unwrap().starts_with("+ "));
    let mut writer = Client::connect(port);
    writer.line().unwrap();
    writer.send("a LOGIN alice wonderland\r\n");
    assert!(tagged(&mut writer, "a").starts_with("a OK"));
    writer.send("b APPEND INBOX {20+}\r\nSubject: hi\r\n\r\nbody\r\n");
    assert!(tagged(&mut writer, "b").starts_with("b OK [APPENDUID"));
    // The idling session hears of it at once, through the backend's change feed.
    assert_eq!(idler.line().unwrap(), "* 1 EXISTS");
    assert!(!server.dir.path().join("data/accounts").exists());
    assert!(server.log().contains("kept in memory only"));
}

const REPLACE_SCRIPT: &str = r#"
import imaplib, sys
port, phase = int(sys.argv[1]), sys.argv[2]
imaplib.Commands["REPLACE"] = ("SELECTED",)

def login():
    m = imaplib.IMAP4("127.0.0.1", port)
    assert m.login("alice", "wonderland")[0] == "OK"
    return m

def draft(text):
    return ("Subject: %s\r\n\r\n%s\r\n" % (text, text)).encode()

if phase == "replace":
    a = login()
    caps = a.capability()[1][0].split()
    assert b"REPLACE" in caps, caps
    for box in ("Drafts", "Sent"):
        a.create(box)  # new accounts may have them already (special-use template)
        assert a.status(box, "(MESSAGES)")[0] == "OK"
    assert a.append("Drafts", "(\\Draft)", None, draft("first"))[0] == "OK"
    b = login()
    assert b.select("Drafts")[0] == "OK"
    assert a.select("Drafts")[0] == "OK"
    # RFC 8508 section 3.3: UID REPLACE, with APPENDUID in an untagged OK (section 4.3).
    a.literal = draft("second")
    typ, data = a.uid("REPLACE", "1", "Drafts", "(\\Draft \\Seen)")
    assert typ == "OK", (typ, data)
    assert a.response("APPENDUID")[1][-1].split()[1] == b"2", a.untagged_responses
    # The other session sees the new draft and the expunge of the old one together.
    assert b.noop()[0] == "OK"
    assert b.response("EXPUNGE")[1] == [b"1"], b.untagged_responses
    assert b.response("EXISTS")[1][-1] == b"1", b.untagged_responses
    typ, data = b.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[TEXT])")
    assert typ == "OK" and data[0][1] == b"second\r\n", data
    # Sent after submission: the draft goes from Drafts, the message lands in Sent.
    a.literal = draft("sent")
    typ, data = a.uid("REPLACE", "2", "Sent", "(\\Seen)")
    assert typ == "OK", (typ, data)
    # A message another session already removed cannot be replaced.
    a.literal = draft("late")
    typ, data = a.uid("REPLACE", "2", "Drafts", "()")
    assert typ == "NO", (typ, data)
    print("replaced")
else:
    m = login()
    typ, data = m.status("Drafts", "(MESSAGES UIDNEXT)")
    assert data == [b'"Drafts" (MESSAGES 0 UIDNEXT 3)'] or data == [b"Drafts (MESSAGES 0 UIDNEXT 3)"], data
    assert m.select("Sent")[0] == "OK"
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[TEXT])")
    assert typ == "OK" and len(data) == 2 and data[0][1] == b"sent\r\n", data
    assert b"\\Seen" in data[0][0], data
    print("durable")
"#;

const UIDONLY_SCRIPT: &str = r#"
import imaplib, sys
port = int(sys.argv[1])
imaplib.Commands["ENABLE"] = ("AUTH",)

def login():
    m = imaplib.IMAP4("127.0.0.1", port)
    assert m.login("alice", "wonderland")[0] == "OK"
    return m

a, b = login(), login()
assert b"UIDONLY" in a.capability()[1][0].split()
for n in range(3):
    assert b.append("INBOX", None, None, b"Subject: m%d\r\n\r\nbody\r\n" % n)[0] == "OK"
typ, data = a._simple_command("ENABLE", "UIDONLY")
assert typ == "OK" and a.untagged_responses.pop("ENABLED") == [b"UIDONLY"], a.untagged_responses
assert a.select("INBOX")[0] == "OK"
# RFC 9586 section 3.3: UID FETCH answers UIDFETCH, named by UID, and never FETCH.
typ, data = a._simple_command("UID", "FETCH", "2:*", "(FLAGS)")
assert typ == "OK", (typ, data)
got = a.untagged_responses.pop("UIDFETCH")
assert got == [b"2 (FLAGS (\\Recent))", b"3 (FLAGS (\\Recent))"], got
assert "FETCH" not in a.untagged_responses, a.untagged_responses
# Section 3: message numbers are refused with BAD [UIDREQUIRED], and the session goes on.
try:
    a.fetch("1", "(FLAGS)")
    raise SystemExit("FETCH by number was accepted")
except imaplib.IMAP4.error as e:
    assert "UIDREQUIRED" in str(e), e
# Section 3.6: another session's changes come as UIDFETCH and VANISHED.
assert b.select("INBOX")[0] == "OK"
assert b.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
assert b.store("2", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
assert b.expunge()[0] == "OK"
assert a.noop()[0] == "OK"
assert a.untagged_responses.pop("UIDFETCH") == [b"1 (FLAGS (\\Flagged \\Recent))"], a.untagged_responses
assert a.untagged_responses.pop("VANISHED") == [b"2"], a.untagged_responses
assert "EXPUNGE" not in a.untagged_responses, a.untagged_responses
typ, data = a.uid("SEARCH", "ALL")
assert typ == "OK" and data == [b"1 3"], data
print("uidonly")
"#;

/// UIDONLY (RFC 9586) with Python's imaplib over TCP against the binary: UIDFETCH responses
/// where FETCH ones would be, BAD [UIDREQUIRED] for a message number, and another session's
/// flag change and expunge announced by UID.
#[test]
fn python_imaplib_uidonly() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(&config, common::config_text("")).unwrap();
    let server = Server::start_with(dir, &config);
    let out = python(UIDONLY_SCRIPT, &[server.port("imap").to_string()]);
    assert_eq!(out, "uidonly\n");
}

/// REPLACE (RFC 8508) with Python's imaplib: a draft replaced in its mailbox, then by a sent
/// message in another; a second session sees each replacement whole; both survive a SIGKILL
/// right after their OK.
#[test]
fn python_imaplib_replace_is_atomic_and_durable() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(&config, common::config_text("")).unwrap();
    let mut server = Server::start_with(dir, &config);
    let out = python(
        REPLACE_SCRIPT,
        &[server.port("imap").to_string(), "replace".into()],
    );
    assert_eq!(out, "replaced\n");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    drop(server);
    let server = Server::start_with(dir, &config);
    let out = python(
        REPLACE_SCRIPT,
        &[server.port("imap").to_string(), "check".into()],
    );
    assert_eq!(out, "durable\n");
}
