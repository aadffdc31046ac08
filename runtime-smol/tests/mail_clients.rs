//! Real mail clients against the real binary: Python's imaplib and poplib across sessions,
//! curl (imap:// and pop3://), mbsync (a 200-message round trip through a Maildir) and
//! fetchmail (delivery to an MDA). Tools that are missing are reported and skipped; CI
//! installs them (.ci/run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{have, python, Server};

const GEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/clients/gen_messages.py"
);

fn generate(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let status = Command::new("python3")
        .arg(GEN)
        .arg(dir)
        .arg(n.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Appends the files of `dir` (sorted) to `mailbox` with imaplib.
fn append_all(server: &Server, dir: &Path, mailbox: &str) {
    python(
        r#"
import imaplib, os, sys
port, folder, box = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
m.login("alice", "wonderland")
if box != "INBOX":
    m.create(box)
for name in sorted(os.listdir(folder)):
    typ, data = m.append(box, None, None, open(os.path.join(folder, name), "rb").read())
    assert typ == "OK", data
m.logout()
"#,
        &[
            server.port("imap").to_string(),
            dir.display().to_string(),
            mailbox.to_string(),
        ],
    );
}

#[test]
fn imaplib_two_sessions_append_fetch_search_store_copy_move_expunge() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start("");
    let out = python(
        r#"
import imaplib, sys
port = int(sys.argv[1])
a = imaplib.IMAP4("127.0.0.1", port); a.login("alice", "wonderland")
b = imaplib.IMAP4("127.0.0.1", port); b.login("alice", "wonderland")
msgs = [b"From: x@example.org\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (i, i) for i in range(3)]
for m in msgs:
    typ, data = a.append("INBOX", None, None, m)
    assert typ == "OK" and b"APPENDUID" in data[0], data
assert a.select("INBOX") == ("OK", [b"3"])
assert b.select("INBOX") == ("OK", [b"3"])
typ, data = a.fetch("2", "(BODY.PEEK[])")
assert data[0][1] == msgs[1], data
typ, data = a.search(None, "SUBJECT", "m2")
assert data == [b"3"], data
typ, data = a.uid("SEARCH", None, "ALL")
assert data == [b"1 2 3"], data
typ, data = a.store("1", "+FLAGS", "(\\Flagged)")
assert typ == "OK"
typ, data = b.noop()
flags = b.untagged_responses.get("FETCH", [])
assert any(b"\\Flagged" in f for f in flags), b.untagged_responses
typ, data = a.copy("1:2", "Archive")
assert typ == "OK" and b"COPYUID" in data[0], data
typ, data = a.uid("MOVE", "3", "Trash")
assert typ == "OK", data
typ, data = a.store("1", "+FLAGS.SILENT", "(\\Deleted)")
typ, data = a.expunge()
# imaplib also returns the EXPUNGE that UID MOVE caused earlier.
assert data[-1] == b"1", data
b.noop()
assert b.untagged_responses.get("EXPUNGE"), b.untagged_responses
typ, data = b.status("Archive", "(MESSAGES)")
assert b"MESSAGES 2" in data[0], data
typ, data = b.status("Trash", "(MESSAGES)")
assert b"MESSAGES 1" in data[0], data
assert b.select("INBOX") == ("OK", [b"1"])
a.logout(); b.logout()
print("ok")
"#,
        &[server.port("imap").to_string()],
    );
    assert_eq!(out, "ok\n");
}

#[test]
fn curl_lists_and_fetches_over_imap() {
    if !have("curl") || !have("python3") {
        eprintln!("SKIPPED: curl or python3 is not installed");
        return;
    }
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    let messages = generate(dir.path(), 3);
    append_all(&server, dir.path(), "INBOX");
    let base = format!("imap://127.0.0.1:{}", server.port("imap"));
    let list = Command::new("curl")
        .args(["-s", "--user", "alice:wonderland", &format!("{base}/")])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.contains("INBOX") && list.contains("\\Sent"), "{list}");
    let fetched = Command::new("curl")
        .args([
            "-s",
            "--user",
            "alice:wonderland",
            &format!("{base}/INBOX;UID=2"),
        ])
        .output()
        .unwrap();
    assert_eq!(fetched.stdout, messages[1]);
}

#[test]
fn mbsync_round_trips_200_messages_byte_exact() {
    if !have("mbsync") || !have("python3") {
        eprintln!("SKIPPED: mbsync (Debian package isync) or python3 is not installed");
        return;
    }
    let server = Server::start("");
    // Not a dot-directory: mbsync's Maildir store will not open boxes under one.
    let work = tempfile::Builder::new()
        .prefix("tern-mbsync")
        .tempdir()
        .unwrap();
    let source = work.path().join("source");
    let messages = generate(&source, 200);
    append_all(&server, &source, "Sync");
    let maildir = work.path().join("maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let config = work.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount tern\nHost 127.0.0.1\nPort {port}\nUser alice\nPass wonderland\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount tern\n\n\
             MaildirStore local\nPath {path}/\nInbox {path}/INBOX\nSubFolders Verbatim\n\n\
             Channel pull\nFar :remote:Sync\nNear :local:Sync\nCreate Near\nSync Pull\nSyncState *\n\n\
             Channel push\nFar :remote:Back\nNear :local:Sync\nCreate Far\nSync Push\nSyncState {state}/push-\n",
            port = server.port("imap"),
            path = maildir.display(),
            // The push channel keeps its own state: sharing the pull's would make mbsync
            // believe the far box existed before and refuse to create it.
            state = work.path().display()
        ),
    )
    .unwrap();
    let run = |channel: &str| {
        // Sync state lives in the Maildir (SyncState *) and HOME points at the test folder,
        // so no state leaks between runs.
        let out = Command::new("mbsync")
            .env("HOME", work.path())
            .arg("-c")
            .arg(&config)
            .arg(channel)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mbsync {channel} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("pull");
    let local: Vec<Vec<u8>> = std::fs::read_dir(maildir.join("Sync/cur"))
        .unwrap()
        .chain(std::fs::read_dir(maildir.join("Sync/new")).unwrap())
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    // A Maildir holds LF line ends, and mbsync marks each copy with an X-TUID header (which it
    // removes again when it uploads).
    let as_maildir = |m: &[u8]| -> Vec<u8> {
        String::from_utf8_lossy(m)
            .replace("\r\n", "\n")
            .lines()
            .filter(|l| !l.starts_with("X-TUID: "))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let mut local: Vec<Vec<u8>> = local.iter().map(|m| as_maildir(m)).collect();
    local.sort();
    let mut expected_local: Vec<Vec<u8>> = messages.iter().map(|m| as_maildir(m)).collect();
    expected_local.sort();
    let mut expected = messages.clone();
    expected.sort();
    assert_eq!(local.len(), 200);
    if let Some((l, e)) = local.iter().zip(&expected_local).find(|(l, e)| l != e) {
        panic!(
            "Maildir copies differ from the appended messages:\n{:?}\n---\n{:?}",
            String::from_utf8_lossy(l),
            String::from_utf8_lossy(e)
        );
    }
    run("push");
    let out = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login("alice", "wonderland")
typ, n = m.select("Back")
typ, data = m.fetch("1:*", "(BODY.PEEK[])")
for item in data:
    if isinstance(item, tuple):
        sys.stdout.buffer.write(b"%d\n" % len(item[1]))
        sys.stdout.buffer.write(item[1])
m.logout()
"#,
        &[server.port("imap").to_string()],
    );
    let mut back = Vec::new();
    let mut rest = out.as_bytes();
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').unwrap();
        let len: usize = std::str::from_utf8(&rest[..nl]).unwrap().parse().unwrap();
        back.push(rest[nl + 1..nl + 1 + len].to_vec());
        rest = &rest[nl + 1 + len..];
    }
    // mbsync's tracking header rides along in the Maildir copy it uploads; everything else
    // must come back byte for byte.
    let without_tuid = |m: &[u8]| -> Vec<u8> {
        let text = String::from_utf8_lossy(m);
        text.split_inclusive("\r\n")
            .filter(|l| !l.starts_with("X-TUID: "))
            .collect::<String>()
            .into_bytes()
    };
    let mut back: Vec<Vec<u8>> = back.iter().map(|m| without_tuid(m)).collect();
    back.sort();
    assert_eq!(back.len(), 200);
    if let Some((b, e)) = back.iter().zip(&expected).find(|(b, e)| b != e) {
        panic!(
            "messages pushed back differ:\n{:?}\n---\n{:?}",
            String::from_utf8_lossy(b),
            String::from_utf8_lossy(e)
        );
    }
}

#[test]
fn poplib_retrieves_dot_lines_exactly_and_quit_deletes() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    let messages = generate(dir.path(), 7);
    append_all(&server, dir.path(), "INBOX");
    let out = python(
        r#"
import poplib, sys, os
port, folder = int(sys.argv[1]), sys.argv[2]
expected = [open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))]
p = poplib.POP3("127.0.0.1", port)
p.user("alice"); p.pass_("wonderland")
count, size = p.stat()
assert count == len(expected) and size == sum(map(len, expected)), (count, size)
for i, want in enumerate(expected, 1):
    resp, lines, octets = p.retr(i)
    got = b"\r\n".join(lines) + b"\r\n"
    assert got == want, (i, got[:200], want[:200])
    assert octets >= len(want)
resp, lines, _ = p.top(1, 0)
assert lines[-1] == b"" and all(not l.startswith(b"body") for l in lines)
uidl = p.uidl()[1]
assert len(set(uidl)) == len(expected)
p.dele(1); p.dele(2)
p.quit()
p = poplib.POP3("127.0.0.1", port)
p.user("alice"); p.pass_("wonderland")
assert p.stat()[0] == len(expected) - 2
p.quit()
print("ok")
"#,
        &[
            server.port("pop3").to_string(),
            dir.path().display().to_string(),
        ],
    );
    assert_eq!(out, "ok\n");
    let _ = messages;
}

#[test]
fn fetchmail_delivers_every_message_to_an_mda_then_deletes_them() {
    if !have("fetchmail") || !have("python3") {
        eprintln!("SKIPPED: fetchmail or python3 is not installed");
        return;
    }
    let server = Server::start("");
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    let messages = generate(&source, 20);
    append_all(&server, &source, "INBOX");
    let delivered = work.path().join("delivered");
    std::fs::create_dir_all(&delivered).unwrap();
    let mda = work.path().join("mda.sh");
    std::fs::write(
        &mda,
        format!(
            "#!/bin/sh\ncat > \"{}/$(date +%s%N)-$$.eml\"\n",
            delivered.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&mda).status().unwrap();
    let rc = work.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll 127.0.0.1 protocol pop3 port {} user alice password wonderland no sslcertck mda \"{}\" nokeep\n",
            server.port("pop3"),
            mda.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("600").arg(&rc).status().unwrap();
    let out = Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .arg("--nodetach")
        .arg("--nosyslog")
        .env("HOME", work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fetchmail failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<Vec<u8>> = std::fs::read_dir(&delivered)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(got.len(), messages.len());
    // fetchmail adds its own Received line and turns CRLF into LF for the MDA.
    let normalise = |m: &[u8]| -> Vec<u8> {
        let text = String::from_utf8_lossy(m).replace("\r\n", "\n");
        let start = text.find("From: Sender").unwrap_or(0);
        text.as_bytes()[start..].to_vec()
    };
    got.iter_mut().for_each(|m| *m = normalise(m));
    got.sort();
    let mut want: Vec<Vec<u8>> = messages.iter().map(|m| normalise(m)).collect();
    want.sort();
    if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
        panic!(
            "delivered messages differ from the appended ones:\n{}\n---\n{}",
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w)
        );
    }
    let stat = python(
        "import poplib,sys\np=poplib.POP3('127.0.0.1',int(sys.argv[1]))\np.user('alice');p.pass_('wonderland')\nprint(p.stat()[0]);p.quit()",
        &[server.port("pop3").to_string()],
    );
    assert_eq!(stat, "0\n");
}

#[test]
fn curl_lists_and_retrieves_over_pop3() {
    if !have("curl") || !have("python3") {
        eprintln!("SKIPPED: curl or python3 is not installed");
        return;
    }
    let server = Server::start("");
    let dir = tempfile::tempdir().unwrap();
    let messages = generate(dir.path(), 2);
    append_all(&server, dir.path(), "INBOX");
    let base = format!("pop3://127.0.0.1:{}", server.port("pop3"));
    let list = Command::new("curl")
        .args(["-s", "--user", "alice:wonderland", &format!("{base}/")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        format!("1 {}\r\n2 {}\r\n", messages[0].len(), messages[1].len())
    );
    let retr = Command::new("curl")
        .args(["-s", "--user", "alice:wonderland", &format!("{base}/1")])
        .output()
        .unwrap();
    assert_eq!(retr.stdout, messages[0]);
}

/// Resident memory of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

#[test]
fn a_client_that_never_reads_a_large_fetch_costs_bounded_memory() {
    if rss_kib(std::process::id()).is_none() {
        eprintln!("SKIPPED: /proc is not available to measure memory");
        return;
    }
    let server = Server::start("");
    let pid = server.child.id();
    // 60 messages of 1 MiB: FETCH 1:* BODY[] asks for 60 MiB of responses.
    let mut c = common::Client::connect(server.port("imap"));
    c.line().unwrap();
    c.send("l LOGIN alice wonderland\r\n");
    assert!(c.line().unwrap().starts_with("l OK"));
    let body = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(1024 * 1024));
    for i in 0..60 {
        c.send(&format!(
            "a{i} APPEND INBOX {{{}+}}\r\n{body}\r\n",
            body.len()
        ));
        assert!(c.line().unwrap().starts_with(&format!("a{i} OK")));
    }
    c.send("s SELECT INBOX\r\n");
    while !c.line().unwrap().starts_with("s OK") {}
    let before = rss_kib(pid).unwrap();
    // Ask for everything and read nothing.
    c.send("f FETCH 1:* BODY[]\r\n");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let during = rss_kib(pid).unwrap();
    let growth_mib = during.saturating_sub(before) / 1024;
    // FETCH goes out in batches of 8 messages, and the next batch waits for the socket:
    // the growth stays near one batch, far below the 60 MiB the whole answer would take.
    assert!(
        growth_mib < 40,
        "server memory grew by {growth_mib} MiB while the client did not read"
    );
    // Another client is still served meanwhile.
    let mut other = common::Client::connect(server.port("imap"));
    assert!(other.line().unwrap().starts_with("* OK"));
}
