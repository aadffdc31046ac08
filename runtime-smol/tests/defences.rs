//! End to end: the login defences and account sources against the real binary.
//!
//! Other client addresses are played by binding client sockets to 127.0.0.2, 127.0.0.3, …
//! (all of 127.0.0.0/8 is loopback on Linux).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, Server};

/// Two accounts, no tarpit (so tests do not wait), and room for many failures per connection.
const ACCOUNTS: &str = r#"
[[directory.users]]
name = "bob"
secret = "{plain}builder"

[auth]
failure-delay = 0.0
max-failures = 50
"#;

fn greeted(c: &mut Client) -> String {
    c.line().expect("no greeting")
}

/// Sends an IMAP command and returns its tagged reply line.
fn imap(c: &mut Client, tag: &str, command: &str) -> String {
    c.send(&format!("{tag} {command}\r\n"));
    loop {
        let line = c.line().expect("connection closed");
        if line.starts_with(&format!("{tag} ")) {
            return line;
        }
    }
}

fn login(c: &mut Client, user: &str, password: &str) -> String {
    imap(c, "l", &format!("LOGIN {user} {password}"))
}

/// Retries until `f` succeeds: the server notices a closed connection asynchronously.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn wrong_passwords_block_one_address_while_others_still_log_in() {
    let server = Server::start(&format!(
        "{ACCOUNTS}ip-failure-limit = 3\naccount-failure-limit = 100\n"
    ));
    let port = server.port("imap");

    let mut attacker = Client::connect_from("127.0.0.2", port);
    assert!(greeted(&mut attacker).starts_with("* OK"));
    for _ in 0..3 {
        let reply = login(&mut attacker, "alice", "guess");
        assert!(reply.starts_with("l NO [AUTHENTICATIONFAILED]"), "{reply}");
    }
    // Blocked now, even with the right password, and before any hashing; and the connection
    // is closed, so further guesses cost a new one (issue 14, item 10: a blocked client used
    // to get 20,000 refusals a second on its open connections).
    let reply = login(&mut attacker, "alice", "wonderland");
    assert!(reply.starts_with("l NO [UNAVAILABLE]"), "{reply}");
    assert_eq!(attacker.line().unwrap(), "* BYE Too many failed logins.");
    assert!(attacker.line().is_none());
    // A new connection from the same address is refused at once with one line, for any
    // protocol; an implicit-TLS listener closes it without a handshake.
    let mut again = Client::connect_from("127.0.0.2", port);
    assert_eq!(
        greeted(&mut again),
        "* BYE [UNAVAILABLE] Too many failed logins from your address; try again later."
    );
    assert!(again.line().is_none());
    let mut pop = Client::connect_from("127.0.0.2", server.port("pop3"));
    assert_eq!(
        greeted(&mut pop),
        "-ERR [SYS/TEMP] Too many failed logins from your address; try again later."
    );
    let mut tls = Client::connect_from("127.0.0.2", server.port("imaps"));
    assert!(tls.closed());

    // Other addresses are unaffected, for the attacked account and others.
    let mut other = Client::connect_from("127.0.0.3", port);
    greeted(&mut other);
    let reply = login(&mut other, "alice", "wonderland");
    assert!(reply.starts_with("l OK"), "{reply}");
    let mut local = Client::connect(port);
    greeted(&mut local);
    let reply = login(&mut local, "bob", "builder");
    assert!(reply.starts_with("l OK"), "{reply}");
    assert!(server
        .log()
        .contains("address blocked after repeated failed logins"));
}

#[test]
fn an_attacked_account_stays_open_to_addresses_it_knows() {
    let server = Server::start(&format!(
        "{ACCOUNTS}ip-failure-limit = 0\naccount-failure-limit = 3\n"
    ));
    let port = server.port("imap");
    let mut home = Client::connect(port);
    greeted(&mut home);
    assert!(login(&mut home, "alice", "wonderland").starts_with("l OK"));

    // Three addresses, one guess each: the account is blocked for strangers.
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let mut c = Client::connect_from(source, port);
        greeted(&mut c);
        assert!(login(&mut c, "ALICE", "guess").starts_with("l NO [AUTHENTICATIONFAILED]"));
    }
    let mut stranger = Client::connect_from("127.0.0.5", port);
    greeted(&mut stranger);
    let reply = login(&mut stranger, "alice", "wonderland");
    assert!(reply.starts_with("l NO [UNAVAILABLE]"), "{reply}");
    assert!(login(&mut stranger, "bob", "builder").starts_with("l OK"));

    // The address alice logged in from before still gets in.
    let mut home_again = Client::connect(port);
    greeted(&mut home_again);
    let reply = login(&mut home_again, "alice", "wonderland");
    assert!(reply.starts_with("l OK"), "{reply}");
}

#[test]
fn one_address_over_its_connection_limit_is_refused_while_others_are_served() {
    let server = Server::start("[limits]\nmax-connections-per-ip = 2\n");
    let port = server.port("imap");
    let mut first = Client::connect_from("127.0.0.2", port);
    assert!(greeted(&mut first).starts_with("* OK"));
    let mut second = Client::connect_from("127.0.0.2", port);
    assert!(greeted(&mut second).starts_with("* OK"));

    let mut third = Client::connect_from("127.0.0.2", port);
    assert_eq!(
        greeted(&mut third),
        "* BYE [UNAVAILABLE] Too many connections from your address."
    );
    assert!(third.closed());
    // The limit spans listeners: POP3 from the same address is refused as well.
    let mut pop = Client::connect_from("127.0.0.2", server.port("pop3"));
    assert!(greeted(&mut pop).starts_with("-ERR [SYS/TEMP] Too many connections"));
    // An implicit-TLS listener just closes: answering would need a handshake.
    let mut tls = Client::connect_from("127.0.0.2", server.port("imaps"));
    assert!(tls.closed());

    // Everyone else is served, and the existing sessions keep working.
    let mut local = Client::connect(port);
    assert!(greeted(&mut local).starts_with("* OK"));
    assert!(login(&mut local, "alice", "wonderland").starts_with("l OK"));
    assert!(imap(&mut first, "n", "NOOP").starts_with("n OK"));

    // A slot frees up when a connection ends.
    drop(second);
    eventually("a freed slot is reused", || {
        let mut c = Client::connect_from("127.0.0.2", port);
        greeted(&mut c).starts_with("* OK")
    });
    assert!(server.log().contains("connection refused"));
}

#[test]
fn the_total_connection_limit_refuses_the_next_client() {
    let server = Server::start("[limits]\nmax-connections = 2\n");
    let port = server.port("imap");
    let mut a = Client::connect_from("127.0.0.2", port);
    greeted(&mut a);
    let mut b = Client::connect_from("127.0.0.3", port);
    greeted(&mut b);
    let mut c = Client::connect_from("127.0.0.4", port);
    assert_eq!(
        greeted(&mut c),
        "* BYE [UNAVAILABLE] Too many connections; try again later."
    );
}

#[test]
fn an_account_at_its_connection_limit_refuses_further_logins() {
    let server = Server::start(&format!(
        "{ACCOUNTS}[limits]\nimap-max-connections-per-account = 2\n"
    ));
    let port = server.port("imap");
    let mut sessions: Vec<Client> = (0..2)
        .map(|_| {
            let mut c = Client::connect(port);
            greeted(&mut c);
            assert!(login(&mut c, "alice", "wonderland").starts_with("l OK"));
            c
        })
        .collect();
    let mut extra = Client::connect(port);
    greeted(&mut extra);
    let reply = login(&mut extra, "Alice", "wonderland");
    assert!(reply.starts_with("l NO [UNAVAILABLE]"), "{reply}");
    // Not a failed login: other accounts, and alice once a session ends, still get in.
    assert!(login(&mut extra, "bob", "builder").starts_with("l OK"));
    assert!(imap(&mut sessions[0], "z", "LOGOUT").starts_with("z OK"));
    sessions.remove(0);
    eventually("alice's freed slot is reused", || {
        let mut c = Client::connect(port);
        greeted(&mut c);
        login(&mut c, "alice", "wonderland").starts_with("l OK")
    });

    // POP3 allows one session per account by default.
    let pop = |user: &str, pass: &str| {
        let mut c = Client::connect(server.port("pop3"));
        greeted(&mut c);
        c.send(&format!("USER {user}\r\nPASS {pass}\r\n"));
        assert!(c.line().unwrap().starts_with("+OK"));
        let reply = c.line().unwrap();
        (c, reply)
    };
    let (_held, reply) = pop("bob", "builder");
    assert!(reply.starts_with("+OK"), "{reply}");
    let (_refused, reply) = pop("bob", "builder");
    assert!(reply.starts_with("-ERR"), "{reply}");
}

/// RFC 8437: a session that UNAUTHENTICATEs no longer holds its account's connection slot
/// (without waiting for the connection to end), and its next login claims one afresh.
#[test]
fn unauthenticate_gives_back_the_account_connection_slot() {
    let server = Server::start(&format!(
        "{ACCOUNTS}[limits]\nimap-max-connections-per-account = 1\n"
    ));
    let port = server.port("imap");
    let mut a = Client::connect(port);
    greeted(&mut a);
    assert!(login(&mut a, "alice", "wonderland").starts_with("l OK"));
    let mut b = Client::connect(port);
    greeted(&mut b);
    let reply = login(&mut b, "alice", "wonderland");
    assert!(reply.starts_with("l NO [UNAVAILABLE]"), "{reply}");

    assert!(imap(&mut a, "u", "UNAUTHENTICATE").starts_with("u OK"));
    let reply = login(&mut b, "alice", "wonderland");
    assert!(reply.starts_with("l OK"), "{reply}");
    // A is a new connection for the limit: bob is free, alice is B's now.
    let reply = login(&mut a, "alice", "wonderland");
    assert!(reply.starts_with("l NO [UNAVAILABLE]"), "{reply}");
    assert!(login(&mut a, "bob", "builder").starts_with("l OK"));
    let mut c = Client::connect(port);
    greeted(&mut c);
    let reply = login(&mut c, "bob", "builder");
    assert!(reply.starts_with("l NO [UNAVAILABLE]"), "{reply}");
    assert!(imap(&mut a, "u", "UNAUTHENTICATE").starts_with("u OK"));
    assert!(login(&mut c, "bob", "builder").starts_with("l OK"));

    // RFC 8437 §8: the operator can turn it off.
    let server = Server::start(&format!("{ACCOUNTS}unauthenticate = false\n"));
    let mut d = Client::connect(server.port("imap"));
    greeted(&mut d);
    let reply = login(&mut d, "alice", "wonderland");
    assert!(!reply.contains("UNAUTHENTICATE"), "{reply}");
    assert!(imap(&mut d, "u", "UNAUTHENTICATE").starts_with("u BAD"));
}

const SHA512_PENCIL: &str = "{SHA512-CRYPT}$6$0G7ox8WR4DD5YUfb$BBwy6UH6ABE2Ivd1URL6z/wvVPpXQQbVqTifIBXkVErcQBERxNGanvAs0LpS/ArxItN/oLy8hiGOkOTpwAqWW0";
const BLF_PENCIL: &str = "{BLF-CRYPT}$2y$05$gXLxvikHsAQD8OhY0QEgZeobFU1PXKgWpZ4uO7r9wVdkBveuE/nbu";

#[test]
fn passwd_file_accounts_log_in_and_changes_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!("# Dovecot passwd-file\ncarol:{SHA512_PENCIL}:1000:1000::/home/carol::\n"),
    )
    .unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(
        &config,
        // No failure counting: the retries below fail until the file is re-read.
        common::config_text(
            "[directory]\npasswd-file = \"users\"\n\
             [auth]\nfailure-delay = 0.0\nip-failure-limit = 0\naccount-failure-limit = 0\n",
        ),
    )
    .unwrap();
    let server = Server::start_with(dir, &config);
    let port = server.port("imap");
    let mut c = Client::connect(port);
    greeted(&mut c);
    assert!(login(&mut c, "Carol", "pencil").starts_with("l OK"));

    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str(&format!("dave:{BLF_PENCIL}\n"));
    std::fs::write(&users, text).unwrap();
    eventually("dave from the re-read file logs in", || {
        let mut c = Client::connect(port);
        greeted(&mut c);
        login(&mut c, "dave", "pencil").starts_with("l OK")
    });

    // A broken file is not taken: dave and carol stay.
    std::fs::write(&users, "this is not a passwd-file\n").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let mut c = Client::connect(port);
    greeted(&mut c);
    assert!(login(&mut c, "dave", "pencil").starts_with("l OK"));
    eventually("the bad re-read is logged", || {
        server.log().contains("passwd-file not re-read")
    });
}

/// The DER of the certificate the server presents on `port` (Python's ssl, no verification).
fn served_certificate(port: u16) -> Vec<u8> {
    let hex = common::python(
        "import ssl, sys\n\
         pem = ssl.get_server_certificate(('127.0.0.1', int(sys.argv[1])))\n\
         print(ssl.PEM_cert_to_DER_cert(pem).hex())\n",
        &[port.to_string()],
    );
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Writes a fresh self-signed certificate and key; returns the certificate's DER.
fn write_certificate(dir: &std::path::Path) -> Vec<u8> {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), generated.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), generated.key_pair.serialize_pem()).unwrap();
    generated.cert.der().to_vec()
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    if !common::have("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = write_certificate(dir.path());
    let config = dir.path().join("tern.toml");
    std::fs::write(
        &config,
        common::config_text(
            "[server.tls]\ncertificate = \"cert.pem\"\nprivate-key = \"key.pem\"\n",
        ),
    )
    .unwrap();
    let server = Server::start_with(dir, &config);
    let port = server.port("imaps");
    assert_eq!(served_certificate(port), first);
    let mut open = Client::connect(server.port("imap"));
    greeted(&mut open);
    assert!(login(&mut open, "alice", "wonderland").starts_with("l OK"));

    let second = write_certificate(server.dir.path());
    let hup = || {
        std::process::Command::new("kill")
            .arg("-HUP")
            .arg(server.child.id().to_string())
            .status()
            .unwrap();
    };
    hup();
    eventually("the reload is logged", || {
        server.log().contains("TLS certificate reloaded")
    });
    assert_eq!(served_certificate(port), second);
    assert!(imap(&mut open, "n", "NOOP").starts_with("n OK"));

    // A broken key is refused and the certificate in use stays.
    std::fs::write(server.dir.path().join("key.pem"), "not a key").unwrap();
    hup();
    eventually("the failed reload is logged", || {
        server.log().contains("TLS certificate not reloaded")
    });
    assert_eq!(served_certificate(port), second);
}

#[test]
fn hash_password_scram_prints_an_rfc5803_record_the_config_accepts() {
    let run = |args: &[&str]| {
        use std::io::Write;
        let mut child = std::process::Command::new(common::BIN)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A child that died early closes stdin; its stderr then says why.
        let _ = child.stdin.take().unwrap().write_all(b"pencil\n");
        child.wait_with_output().unwrap()
    };
    let out = run(&["hash-password", "--scram"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let keys = tern_core::sasl::ScramCredentials::from_rfc5803(&record).unwrap();
    assert_eq!(keys.iterations, 10_000);
    assert_eq!(
        keys,
        tern_core::sasl::ScramCredentials::derive("pencil", &keys.salt, 10_000).unwrap()
    );
    let out = run(&["hash-password", "--scram", "--iterations", "4096"]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("SCRAM-SHA-256$4096:"));
    let out = run(&["hash-password", "--scram", "--iterations", "100"]);
    assert!(!out.status.success());

    // The record is accepted as a user's `scram`.
    let dir = tempfile::tempdir().unwrap();
    let text = common::config_text(&format!(
        "[[directory.users]]\nname = \"erin\"\nsecret = \"{}\"\nscram = \"{record}\"\n",
        SHA512_PENCIL.replace('\\', "\\\\")
    ));
    std::fs::write(dir.path().join("t.toml"), text).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["check-config", "t.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads until the server closes the connection; how long that took, or `None` if it was
/// still open after `limit`.
fn closed_within(port: u16, before_silence: &[u8], limit: Duration) -> Option<Duration> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(before_silence).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// A peer that opens a TLS handshake and then says nothing must not hold a connection slot:
/// implicit TLS and STARTTLS alike end after `timeouts.tls-handshake`.
#[test]
fn a_stalled_tls_handshake_is_dropped() {
    let server = Server::start("[timeouts]\ntls-handshake = 1\n");
    // Implicit TLS: not even a ClientHello.
    let took = closed_within(server.port("imaps"), b"", Duration::from_secs(15))
        .expect("implicit TLS connection still open");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    // Half a ClientHello record header, then silence.
    closed_within(server.port("pop3s"), b"\x16\x03", Duration::from_secs(15))
        .expect("POP3S connection still open");
    // STARTTLS accepted, then no handshake.
    closed_within(
        server.port("imap"),
        b"a STARTTLS\r\n",
        Duration::from_secs(15),
    )
    .expect("STARTTLS connection still open");
    // The server is still there for others.
    let mut c = Client::connect(server.port("imap"));
    assert!(greeted(&mut c).starts_with("* OK"));
}

/// Issue 13, item 6: a SCRAM login is verified inside the session, and used to skip the
/// account's connection limit that LOGIN and PLAIN are held to.
#[test]
fn scram_logins_count_against_the_account_connection_limit() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    let server = Server::start(&format!(
        "{ACCOUNTS}[limits]\nimap-max-connections-per-account = 1\n"
    ));
    let port = server.port("imap");
    let scram = |c: &mut Client| -> String {
        let client = tern_core::sasl::ScramClient::new("alice", "e2e-nonce", None);
        c.send(&format!(
            "s AUTHENTICATE SCRAM-SHA-256 {}\r\n",
            B64.encode(client.client_first())
        ));
        let first = c.line().unwrap();
        let server_first = B64
            .decode(
                first
                    .strip_prefix("+ ")
                    .unwrap_or_else(|| panic!("{first}")),
            )
            .unwrap();
        let last = client.client_final(&server_first, "wonderland").unwrap();
        c.send(&format!("{}\r\n", B64.encode(last)));
        let reply = c.line().unwrap();
        if reply.starts_with("+ ") {
            c.send("\r\n");
            return c.line().unwrap();
        }
        reply
    };
    let mut first = Client::connect(port);
    greeted(&mut first);
    let reply = scram(&mut first);
    assert!(reply.starts_with("s OK"), "{reply}");
    let mut second = Client::connect(port);
    greeted(&mut second);
    let reply = scram(&mut second);
    assert!(reply.starts_with("s NO [UNAVAILABLE]"), "{reply}");
    let reply = login(&mut second, "alice", "wonderland");
    assert!(reply.starts_with("l NO [UNAVAILABLE]"), "{reply}");
    // Not a failed login, and the place frees up when the first session ends.
    assert!(imap(&mut first, "z", "LOGOUT").starts_with("z OK"));
    eventually("alice's freed slot is reused by SCRAM", || {
        let mut c = Client::connect(port);
        greeted(&mut c);
        scram(&mut c).starts_with("s OK")
    });
}

/// Issue 19: the store's bounds come from `[limits]`: mailboxes per account, and the work of
/// one SEARCH (past it: `NO [LIMIT]`, and the session goes on).
#[test]
fn store_limits_come_from_the_configuration() {
    let server = Server::start("[limits]\nmax-mailboxes = 7\nsearch-work = 1\n");
    let mut c = Client::connect(server.port("imap"));
    greeted(&mut c);
    assert!(login(&mut c, "alice", "wonderland").starts_with("l OK"));
    // INBOX and the five default mailboxes are six.
    assert!(imap(&mut c, "c1", "CREATE a").starts_with("c1 OK"));
    let refused = imap(&mut c, "c2", "CREATE b");
    assert!(refused.starts_with("c2 NO [LIMIT]"), "{refused}");
    let message = "Subject: hi\r\n\r\nhello\r\n";
    c.send(&format!(
        "a APPEND INBOX {{{}+}}\r\n{message}\r\n",
        message.len()
    ));
    assert!(imap(&mut c, "n", "NOOP").starts_with("n OK"));
    assert!(imap(&mut c, "s", "SELECT INBOX").starts_with("s OK"));
    let refused = imap(&mut c, "q", "SEARCH TEXT hello");
    assert!(refused.starts_with("q NO [LIMIT]"), "{refused}");
    assert!(imap(&mut c, "z", "NOOP").starts_with("z OK"));
}
