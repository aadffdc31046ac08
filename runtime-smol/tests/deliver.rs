//! `tern deliver` end to end: the real binary with and without a running server, its exit
//! codes (sysexits), and what it stored read back over IMAP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{config_text, Client, Server, BIN};

/// An LMTP listener on a Unix socket (which deliver prefers) and one on TCP, a second
/// account, and a small size limit.
const LMTP: &str = r#"
[[directory.users]]
name = "bob"
secret = "{plain}builder"

[server.listener."lmtp"]
bind = ["127.0.0.1:0"]
path = "lmtp.sock"
protocol = "lmtp"

[limits]
imap-max-literal = 4000
"#;

/// A message with bare LF line ends (as MTAs pipe it), an mbox `From ` line, a line that is
/// a lone dot and one starting with two dots.
const PIPED: &[u8] = b"From sender@remote.test Mon Dec  7 10:00:00 2026\n\
Subject: piped\n\
\n\
first\n\
.\n\
..two dots\n\
last line without its end";

/// What must be stored for [`PIPED`] delivered to `to`: the trace lines, CRLF everywhere,
/// the dots as they were, the `From ` line gone.
fn stored(to: &str) -> Vec<u8> {
    format!(
        "Return-Path: <sender@remote.test>\r\nDelivered-To: {to}\r\nSubject: piped\r\n\r\n\
         first\r\n.\r\n..two dots\r\nlast line without its end\r\n"
    )
    .into_bytes()
}

/// A configuration in a fresh folder, no server started.
fn setup(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(&config, config_text(extra)).unwrap();
    (dir, config)
}

/// Runs `tern deliver --config CONFIG ARGS` with `input` on standard input; its exit code
/// and standard error. Bounded: a hung deliver fails the test.
fn deliver(config: &Path, args: &[&str], input: &[u8]) -> (i32, String) {
    let mut child = Command::new(BIN)
        .arg("deliver")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused message may not be read to its end: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("tern deliver did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Logs in over IMAP and selects `mailbox`.
fn imap(server: &Server, user: &str, password: &str, mailbox: &str) -> Client {
    let mut c = Client::connect(server.port("imap"));
    c.line().unwrap();
    c.send(&format!("a LOGIN {user} {password}\r\n"));
    assert!(c.tagged("a").unwrap().starts_with("a OK"));
    c.send(&format!("b SELECT \"{mailbox}\"\r\n"));
    assert!(c.tagged("b").unwrap().starts_with("b OK"));
    c
}

/// Message `n`'s octets as stored.
fn fetch(c: &mut Client, n: u32) -> Vec<u8> {
    c.send(&format!("f FETCH {n} BODY.PEEK[]\r\n"));
    let head = c.line().unwrap();
    let size: usize = head
        .rsplit_once('{')
        .and_then(|(_, s)| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("no literal in {head:?}"))
        .parse()
        .unwrap();
    let body = c.read_exact(size);
    assert!(c.tagged("f").unwrap().starts_with("f OK"));
    body
}

/// The number of messages in `mailbox` (STATUS MESSAGES).
fn count(c: &mut Client, mailbox: &str) -> u32 {
    c.send(&format!("s STATUS \"{mailbox}\" (MESSAGES)\r\n"));
    let line = c.line().unwrap();
    let n = line
        .rsplit_once("MESSAGES ")
        .and_then(|(_, n)| n.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    assert!(c.tagged("s").unwrap().starts_with("s OK"));
    n
}

#[test]
fn without_a_server_deliver_opens_the_store_itself() {
    let (dir, config) = setup(LMTP);
    // No server: the store is free (deliver creates it).
    let (code, err) = deliver(&config, &["--user", "alice"], PIPED);
    assert_eq!(code, 0, "{err}");
    // `--mailbox` naming no mailbox: INBOX, as dovecot-lda -m without autocreate.
    let (code, err) = deliver(&config, &["--user", "ALICE", "--mailbox", "Nope/x"], PIPED);
    assert_eq!(code, 0, "{err}");
    // Unknown user, too large, empty: nothing stored.
    let (code, err) = deliver(&config, &["--user", "nobody"], PIPED);
    assert_eq!(code, 67, "{err}");
    assert!(err.contains("5.1.1"), "{err}");
    let (code, err) = deliver(&config, &["--user", "alice"], &b"x\n".repeat(3000));
    assert_eq!(code, 65, "{err}");
    let (code, err) = deliver(&config, &["--user", "alice"], b"");
    assert_eq!(code, 65, "{err}");

    // The server, started afterwards, shows what deliver stored.
    let server = Server::start_with(dir, &config);
    let mut c = imap(&server, "alice", "wonderland", "INBOX");
    assert_eq!(count(&mut c, "INBOX"), 2);
    assert_eq!(fetch(&mut c, 1), stored("alice"));
    assert_eq!(fetch(&mut c, 2), stored("ALICE+Nope/x"));
}

#[test]
fn with_the_server_running_deliver_hands_over_by_lmtp_and_idle_sees_it() {
    let server = Server::start(LMTP);
    let config = server.dir.path().join("tern.toml");
    // The store is the server's now: deliver goes through its LMTP socket.
    let mut idle = imap(&server, "alice", "wonderland", "INBOX");
    idle.send("i IDLE\r\n");
    assert!(idle.line().unwrap().starts_with('+'));
    let (code, err) = deliver(&config, &["--user", "alice@example.org"], PIPED);
    let delivered = Instant::now();
    assert_eq!(code, 0, "{err}");
    let line = idle.line().unwrap();
    assert_eq!(line, "* 1 EXISTS");
    assert!(delivered.elapsed() < Duration::from_secs(1));
    idle.send("DONE\r\n");
    assert!(idle.tagged("i").unwrap().starts_with("i OK"));
    // The same octets as the way without a server.
    assert_eq!(fetch(&mut idle, 1), stored("alice@example.org"));

    // A nested mailbox by `--mailbox`: the `+detail` form carries it whole.
    idle.send("c CREATE \"Lists/rust\"\r\n");
    assert!(idle.tagged("c").unwrap().starts_with("c OK"));
    let (code, err) = deliver(
        &config,
        &[
            "--user",
            "alice",
            "--mailbox",
            "Lists/rust",
            "-f",
            "list@rust.test",
        ],
        b"Subject: nested\n\nbody\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(count(&mut idle, "Lists/rust"), 1);
    idle.send("e EXAMINE \"Lists/rust\"\r\n");
    assert!(idle.tagged("e").unwrap().starts_with("e OK"));
    assert_eq!(
        fetch(&mut idle, 1),
        b"Return-Path: <list@rust.test>\r\nDelivered-To: alice+Lists/rust\r\n\
          Subject: nested\r\n\r\nbody\r\n"
    );

    // Refusals through the server map to the same exit codes.
    let (code, err) = deliver(&config, &["--user", "nobody"], PIPED);
    assert_eq!(code, 67, "{err}");
    let (code, err) = deliver(&config, &["--user", "bob"], &b"x\n".repeat(3000));
    assert_eq!(code, 65, "{err}");
    assert_eq!(count(&mut idle, "INBOX"), 1);
}

#[test]
fn a_message_over_the_limit_is_refused_by_the_server_too() {
    // deliver reads a larger limit than the server's: the server's 552 5.3.4 decides.
    let server = Server::start(LMTP);
    let config = server.dir.path().join("deliver.toml");
    let text = std::fs::read_to_string(server.dir.path().join("tern.toml")).unwrap();
    std::fs::write(
        &config,
        text.replace("imap-max-literal = 4000", "imap-max-literal = 40000"),
    )
    .unwrap();
    let (code, err) = deliver(&config, &["--user", "alice"], &b"x\n".repeat(3000));
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("552 5.3.4"), "{err}");
}

#[test]
fn a_running_server_without_lmtp_is_a_temporary_failure_with_advice() {
    let server = Server::start("");
    let config = server.dir.path().join("tern.toml");
    let started = Instant::now();
    let (code, err) = deliver(&config, &["--user", "alice"], PIPED);
    assert_eq!(code, 75, "{err}");
    assert!(err.contains("protocol = \"lmtp\""), "{err}");
    // It waited for the lock (another deliver may hold it a moment), boundedly.
    assert!(started.elapsed() >= Duration::from_secs(4));
    let mut c = imap(&server, "alice", "wonderland", "INBOX");
    assert_eq!(count(&mut c, "INBOX"), 0);
}

#[test]
fn usage_and_configuration_errors() {
    let (_dir, config) = setup("");
    let (code, err) = deliver(&config, &["--mailbox", "INBOX"], PIPED);
    assert_eq!(code, 64, "{err}");
    let (code, err) = deliver(&config, &["--user", "a+b", "--mailbox", "c"], PIPED);
    assert_eq!(code, 64, "{err}");
    let missing = config.with_file_name("missing.toml");
    let (code, err) = deliver(&missing, &["--user", "alice"], PIPED);
    assert_eq!(code, 78, "{err}");
}

#[test]
fn concurrent_deliveries_without_a_server_take_turns_on_the_store() {
    // An MTA runs several deliveries at once; each holds the store's lock for a moment, and
    // the others wait for it rather than fail.
    let (dir, config) = setup(LMTP);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let config = config.clone();
            std::thread::spawn(move || {
                let body = format!("Subject: parallel {i}\n\nbody\n");
                deliver(&config, &["--user", "bob"], body.as_bytes())
            })
        })
        .collect();
    for h in handles {
        let (code, err) = h.join().unwrap();
        assert_eq!(code, 0, "{err}");
    }
    let server = Server::start_with(dir, &config);
    let mut c = imap(&server, "bob", "builder", "INBOX");
    assert_eq!(count(&mut c, "INBOX"), 4);
}

#[test]
fn a_server_starting_while_a_delivery_holds_the_store_waits_for_it() {
    // As a `tern deliver` without a server would: the store held for a moment.
    let (dir, config) = setup(LMTP);
    let store = tern_store_sqlite::SqliteStore::open(&dir.path().join("data")).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(store);
    });
    let server = Server::start_with(dir, &config);
    release.join().unwrap();
    let mut c = imap(&server, "alice", "wonderland", "INBOX");
    assert_eq!(count(&mut c, "INBOX"), 0);
}

/// The README's pipe transport: Postfix runs `tern deliver` as an unprivileged user (who
/// cannot open the store's files) for each recipient, and deliver hands the message to the
/// running server over its LMTP socket; `${extension}` chooses the mailbox, empty for INBOX.
#[test]
fn postfix_pipes_to_tern_deliver() {
    if !common::Postfix::available() || !common::have("python3") {
        eprintln!("SKIPPED: needs root, python3 and Postfix (apt-get install postfix)");
        return;
    }
    let server = Server::start(&LMTP.replace(
        "path = \"lmtp.sock\"",
        "path = \"lmtp.sock\"\nsocket-mode = 0o666",
    ));
    // The unprivileged user must reach the configuration and the socket, nothing more.
    let dir = server.dir.path();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = dir.join("tern.toml");
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let postfix = common::Postfix::start(
        "virtual_mailbox_domains = example.org\nvirtual_transport = tern\n\
         tern_destination_recipient_limit = 1\nrecipient_delimiter = +\n",
        &format!(
            "tern unix - n n - - pipe\n  flags=q user=nobody argv={BIN} deliver --config {} \
             -f ${{sender}} --user ${{user}}@${{domain}} --mailbox ${{extension}}\n",
            config.display()
        ),
    );
    let mut c = imap(&server, "alice", "wonderland", "INBOX");
    c.send("c CREATE lists\r\n");
    assert!(c.tagged("c").unwrap().starts_with("c OK"));
    common::python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("sender@remote.test", ["alice@example.org", "alice+lists@example.org"],
           b"Subject: via pipe\r\n\r\nhello from postfix\r\n")
s.quit()
"#,
        &[postfix.smtp_port.to_string()],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while (count(&mut c, "INBOX"), count(&mut c, "lists")) != (1, 1) {
        assert!(
            Instant::now() < deadline,
            "not delivered; Postfix log:\n{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let inbox = fetch(&mut c, 1);
    let text = String::from_utf8_lossy(&inbox);
    assert!(
        text.starts_with(
            "Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.org\r\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nhello from postfix\r\n"), "{text}");
}
