//! Session behaviour for the foundation commands, driven with a virtual clock and `MemStore`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tern_core::drive::{pump, Blocked};
use tern_core::{Input, MemStore, Protocol, Session, SessionConfig, Transport};

struct Harness {
    session: Session,
    store: MemStore,
    now: Instant,
    wire: Vec<u8>,
    blocked: Blocked,
}

impl Harness {
    fn new(protocol: Protocol, transport: Transport, plaintext: bool) -> Harness {
        let mut store = MemStore::new();
        store.add_user("alice", "wonderland");
        let mut config = SessionConfig::new(protocol, transport);
        config.plaintext_auth_without_tls = plaintext;
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut h = Harness {
            session: Session::new(config, now),
            store,
            now,
            wire: Vec::new(),
            blocked: Blocked::Close,
        };
        h.pump();
        h
    }

    fn pump(&mut self) {
        let wire = &mut self.wire;
        self.blocked = pump(&mut self.session, &mut self.store, self.now, &mut |b| {
            wire.extend_from_slice(b)
        })
        .unwrap();
    }

    /// Sends `data` and returns what the server wrote since the last call.
    fn send(&mut self, data: &str) -> String {
        self.session
            .handle_input(Input::Bytes {
                now: self.now,
                data: data.as_bytes(),
            })
            .unwrap();
        self.pump();
        self.take()
    }

    fn take(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.wire)).unwrap()
    }

    fn advance(&mut self, by: Duration) -> String {
        self.now += by;
        self.session
            .handle_input(Input::Timeout { now: self.now })
            .unwrap();
        self.pump();
        self.take()
    }
}

fn imap(transport: Transport, plaintext: bool) -> Harness {
    Harness::new(Protocol::Imap, transport, plaintext)
}

#[test]
fn rfc9051_7_1_1_greeting_carries_capabilities() {
    let mut h = imap(Transport::StartTlsAvailable, false);
    assert_eq!(
        h.take(),
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS LOGINDISABLED] tern ready.\r\n"
    );
}

#[test]
fn rfc9051_6_2_3_login_refused_without_tls_and_allowed_on_loopback() {
    let mut h = imap(Transport::StartTlsAvailable, false);
    h.take();
    assert_eq!(
        h.send("a LOGIN alice wonderland\r\n"),
        "a NO [PRIVACYREQUIRED] Plaintext authentication is disallowed without TLS.\r\n"
    );
    let mut h = imap(Transport::Plaintext, true);
    h.take();
    assert_eq!(
        h.send("a LOGIN alice wonderland\r\n"),
        "a OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+] Logged in.\r\n"
    );
    assert_eq!(h.session.account(), Some("alice"));
    assert_eq!(
        h.send("b LOGIN alice x\r\n"),
        "b BAD Already authenticated.\r\n"
    );
}

#[test]
fn rfc9051_6_2_1_starttls_discards_pipelined_plaintext() {
    let mut h = imap(Transport::StartTlsAvailable, false);
    h.take();
    assert_eq!(
        h.send("s STARTTLS\r\ninjected LOGIN alice wonderland\r\n"),
        "s OK Begin TLS negotiation now.\r\n"
    );
    assert_eq!(h.blocked, Blocked::StartTls);
    assert!(h.send("more plaintext\r\n").is_empty());
    h.session
        .handle_input(Input::TlsEstablished { now: h.now })
        .unwrap();
    h.pump();
    assert_eq!(
        h.send("c CAPABILITY\r\n"),
        "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN\r\nc OK CAPABILITY completed.\r\n"
    );
    assert_eq!(
        h.send("d STARTTLS\r\n"),
        "d BAD TLS is already active or not available.\r\n"
    );
}

#[test]
fn rfc4959_authenticate_plain_with_and_without_initial_response() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    // "\0alice\0wonderland"
    assert_eq!(
        h.send("a AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n"),
        "a OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+] Logged in.\r\n"
    );
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(h.send("a AUTHENTICATE plain\r\n"), "+ \r\n");
    assert_eq!(h.send("*\r\n"), "a BAD Authentication cancelled.\r\n");
    assert_eq!(h.send("b AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    assert_eq!(h.send("%%%\r\n"), "b BAD Invalid base64 data.\r\n");
    assert_eq!(
        h.send("c AUTHENTICATE CRAM-MD5\r\n"),
        "c NO Unsupported authentication mechanism.\r\n"
    );
    assert_eq!(h.send("d AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    assert_eq!(
        h.send("AGFsaWNlAHdvbmRlcmxhbmQ=\r\n"),
        "d OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+] Logged in.\r\n"
    );
}

#[test]
fn failed_logins_are_delayed_growing_and_end_the_connection() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    // The answer waits for the delay; a pipelined command waits behind it.
    assert_eq!(h.send("a LOGIN alice nope\r\nb NOOP\r\n"), "");
    assert_eq!(h.advance(Duration::from_millis(1999)), "");
    assert_eq!(
        h.advance(Duration::from_millis(1)),
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\nb OK NOOP completed.\r\n"
    );
    assert_eq!(h.send("c LOGIN bob x\r\n"), "");
    assert_eq!(h.advance(Duration::from_secs(3)), "");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        "c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    h.send("d LOGIN alice y\r\n");
    assert_eq!(
        h.advance(Duration::from_secs(8)),
        "d NO [AUTHENTICATIONFAILED] Authentication failed.\r\n\
         * BYE Too many failed authentication attempts.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
}

#[test]
fn rfc9051_5_4_autologout_after_thirty_minutes() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(h.blocked, Blocked::Until(h.now + Duration::from_secs(1800)));
    assert_eq!(h.advance(Duration::from_secs(1799)), "");
    assert_eq!(h.send("a NOOP\r\n"), "a OK NOOP completed.\r\n");
    assert_eq!(h.advance(Duration::from_secs(1799)), "");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        "* BYE Autologout; idle for too long.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
}

#[test]
fn literals_get_continuations_and_oversized_ones_toobig() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(h.send("a LOGIN {5}\r\n"), "+ Ready for literal data\r\n");
    assert_eq!(
        h.send("alice {10+}\r\nwonderland\r\n"),
        "a OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+] Logged in.\r\n"
    );
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    // Before authentication a literal may not exceed 8 KiB.
    assert_eq!(
        h.send("a LOGIN {9000}\r\nb NOOP\r\n"),
        "a NO [TOOBIG] Literal too large.\r\nb OK NOOP completed.\r\n"
    );
    assert_eq!(
        h.send(&format!(
            "c LOGIN {{9000+}}\r\n{} x\r\nd NOOP\r\n",
            "x".repeat(9000)
        )),
        "c BAD [TOOBIG] Command too large.\r\nd OK NOOP completed.\r\n"
    );
}

#[test]
fn bad_input_is_answered_and_the_connection_stays_usable() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(
        h.send("\r\n"),
        "* BAD Error in IMAP command: missing or invalid tag.\r\n"
    );
    assert_eq!(h.send("x FROB\r\n"), "x BAD Unknown command.\r\n");
    assert_eq!(
        h.send(&format!("y {}\r\n", "A".repeat(70_000))),
        "y BAD [TOOBIG] Command line too long.\r\n"
    );
    assert_eq!(h.send("z NOOP\r\n"), "z OK NOOP completed.\r\n");
}

#[test]
fn twenty_bad_commands_end_the_connection() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    let out = h.send(&"x FROB\r\n".repeat(25));
    assert_eq!(out.matches("x BAD").count(), 20);
    assert!(out.ends_with("* BYE Too many invalid commands.\r\n"));
    assert_eq!(h.blocked, Blocked::Close);
}

#[test]
fn shutdown_says_bye() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    h.session
        .handle_input(Input::Shutdown { now: h.now })
        .unwrap();
    h.pump();
    assert_eq!(h.take(), "* BYE Server shutting down.\r\n");
    assert_eq!(h.blocked, Blocked::Close);
}

fn pop3(transport: Transport, plaintext: bool) -> Harness {
    Harness::new(Protocol::Pop3, transport, plaintext)
}

#[test]
fn rfc2449_capa_depends_on_state_and_transport() {
    let mut h = pop3(Transport::StartTlsAvailable, false);
    assert_eq!(h.take(), "+OK tern ready.\r\n");
    assert_eq!(
        h.send("CAPA\r\n"),
        "+OK Capability list follows.\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION tern\r\n.\r\n"
    );
    assert_eq!(
        h.send("USER alice\r\n"),
        "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections.\r\n"
    );
    assert_eq!(
        h.send("STLS\r\nUSER injected\r\n"),
        "+OK Begin TLS negotiation now.\r\n"
    );
    assert_eq!(h.blocked, Blocked::StartTls);
    h.session
        .handle_input(Input::TlsEstablished { now: h.now })
        .unwrap();
    h.pump();
    assert_eq!(
        h.send("CAPA\r\n"),
        "+OK Capability list follows.\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\nIMPLEMENTATION tern\r\n.\r\n"
    );
    assert_eq!(h.send("PASS x\r\n"), "-ERR No user name given.\r\n");
    assert_eq!(
        h.send("USER alice\r\nPASS wonderland\r\n"),
        "+OK\r\n+OK Logged in.\r\n"
    );
    assert_eq!(h.send("STLS\r\n"), "-ERR Not allowed in this state.\r\n");
    assert_eq!(h.send("NOOP\r\nQUIT\r\n"), "+OK\r\n+OK Logging out.\r\n");
    assert_eq!(h.blocked, Blocked::Close);
}

#[test]
fn rfc5034_auth_plain() {
    let mut h = pop3(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(h.send("AUTH PLAIN\r\n"), "+ \r\n");
    assert_eq!(h.send("*\r\n"), "-ERR Authentication cancelled.\r\n");
    assert_eq!(h.send("AUTH\r\n"), "+OK\r\nPLAIN\r\n.\r\n");
    assert_eq!(
        h.send("AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n"),
        "+OK Logged in.\r\n"
    );
}

#[test]
fn pop3_failed_pass_is_delayed_and_long_lines_refused() {
    let mut h = pop3(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(h.send("USER alice\r\nPASS wrong\r\n"), "+OK\r\n");
    assert_eq!(
        h.advance(Duration::from_secs(2)),
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    assert_eq!(
        h.send(&format!("USER {}\r\nNOOP\r\n", "a".repeat(600))),
        "-ERR Line too long.\r\n-ERR Not allowed before authentication.\r\n"
    );
}

#[test]
fn rfc1939_3_inactivity_closes_without_update() {
    let mut h = pop3(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(
        h.advance(Duration::from_secs(600)),
        "-ERR Disconnected for inactivity.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
}
