//! Session behaviour for the foundation commands, driven with a virtual clock and `MemStore`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tern_core::drive::{pump, Blocked};
use tern_core::{Input, MemDirectory, MemStore, Protocol, Session, SessionConfig, Transport};

struct Harness {
    session: Session,
    store: MemStore,
    directory: MemDirectory,
    now: Instant,
    wire: Vec<u8>,
    blocked: Blocked,
}

impl Harness {
    fn new(protocol: Protocol, transport: Transport, plaintext: bool) -> Harness {
        let mut config = SessionConfig::new(protocol, transport);
        config.plaintext_auth_without_tls = plaintext;
        Harness::with_config(config)
    }

    fn with_config(config: SessionConfig) -> Harness {
        let store = MemStore::new();
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "wonderland");
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut h = Harness {
            session: Session::new(config, now),
            store,
            directory,
            now,
            wire: Vec::new(),
            blocked: Blocked::Close,
        };
        h.pump();
        h
    }

    fn pump(&mut self) {
        let wire = &mut self.wire;
        self.blocked = pump(
            &mut self.session,
            &mut self.store,
            &mut self.directory,
            self.now,
            &mut |b| wire.extend_from_slice(b),
        )
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
        "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED] tern ready.\r\n"
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
        "a OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UNAUTHENTICATE UIDPLUS ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT PARTIAL LIST-EXTENDED LIST-STATUS MOVE BINARY SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE CHILDREN MULTIAPPEND REPLACE UTF8=ACCEPT WITHIN OBJECTID PREVIEW SAVEDATE CONDSTORE QRESYNC UIDONLY MULTISEARCH METADATA INPROGRESS APPENDLIMIT=67108864] Logged in.\r\n"
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
        .handle_input(Input::TlsEstablished {
            now: h.now,
            channel_bindings: Default::default(),
        })
        .unwrap();
    h.pump();
    assert_eq!(
        h.send("c CAPABILITY\r\n"),
        "* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN\r\nc OK CAPABILITY completed.\r\n"
    );
    assert_eq!(
        h.send("d STARTTLS\r\n"),
        "d BAD TLS is already active or not available.\r\n"
    );
}

#[test]
fn rfc4978_3_compress_switches_after_its_ok_and_only_once() {
    // A driver that cannot compress is not offered COMPRESS.
    let mut h = imap(Transport::Plaintext, true);
    let login = h.send("b LOGIN alice wonderland\r\n");
    assert!(!login.contains("COMPRESS"), "{login}");
    assert_eq!(
        h.send("c COMPRESS DEFLATE\r\n"),
        "c BAD Command not supported.\r\n"
    );

    let mut config = SessionConfig::new(Protocol::Imap, Transport::Plaintext);
    config.plaintext_auth_without_tls = true;
    config.compression = true;
    let mut h = Harness::with_config(config);
    h.take();
    assert_eq!(
        h.send("a COMPRESS DEFLATE\r\n"),
        "a BAD Please authenticate first.\r\n"
    );
    let login = h.send("b LOGIN alice wonderland\r\n");
    assert!(login.contains(" COMPRESS=DEFLATE "), "{login}");
    assert_eq!(
        h.send("c COMPRESS X-LZW\r\n"),
        "c BAD Unknown compression mechanism.\r\n"
    );
    // The OK is written before the driver is told to switch; octets pipelined after the
    // command (the client must wait for the OK) are not acted on.
    assert_eq!(
        h.send("d COMPRESS DEFLATE\r\nx NOOP\r\n"),
        "d OK DEFLATE active.\r\n"
    );
    assert_eq!(h.blocked, Blocked::StartCompression);
    let caps = h.send("e CAPABILITY\r\n");
    assert!(caps.starts_with("* CAPABILITY IMAP4rev1 "), "{caps}");
    assert!(!caps.contains("COMPRESS"), "{caps}");
    assert_eq!(
        h.send("f COMPRESS DEFLATE\r\n"),
        "f NO [COMPRESSIONACTIVE] DEFLATE is active already.\r\n"
    );
    // RFC 8437 §4.1 wants the compression layer gone after UNAUTHENTICATE's OK; DEFLATE
    // cannot be stopped mid-stream, so the connection ends with BYE (§3) instead.
    assert_eq!(
        h.send("g UNAUTHENTICATE\r\n"),
        "* BYE Compression cannot be turned off; log in again on a new connection.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
}

#[test]
fn rfc4959_authenticate_plain_with_and_without_initial_response() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    // "\0alice\0wonderland"
    assert_eq!(
        h.send("a AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n"),
        "a OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UNAUTHENTICATE UIDPLUS ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT PARTIAL LIST-EXTENDED LIST-STATUS MOVE BINARY SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE CHILDREN MULTIAPPEND REPLACE UTF8=ACCEPT WITHIN OBJECTID PREVIEW SAVEDATE CONDSTORE QRESYNC UIDONLY MULTISEARCH METADATA INPROGRESS APPENDLIMIT=67108864] Logged in.\r\n"
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
        "d OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UNAUTHENTICATE UIDPLUS ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT PARTIAL LIST-EXTENDED LIST-STATUS MOVE BINARY SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE CHILDREN MULTIAPPEND REPLACE UTF8=ACCEPT WITHIN OBJECTID PREVIEW SAVEDATE CONDSTORE QRESYNC UIDONLY MULTISEARCH METADATA INPROGRESS APPENDLIMIT=67108864] Logged in.\r\n"
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
    // Before a login, the login timeout (a minute) is the next deadline.
    assert_eq!(h.blocked, Blocked::Until(h.now + Duration::from_secs(60)));
    assert!(h.send("l LOGIN alice wonderland\r\n").starts_with("l OK"));
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
        "a OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UNAUTHENTICATE UIDPLUS ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT PARTIAL LIST-EXTENDED LIST-STATUS MOVE BINARY SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE CHILDREN MULTIAPPEND REPLACE UTF8=ACCEPT WITHIN OBJECTID PREVIEW SAVEDATE CONDSTORE QRESYNC UIDONLY MULTISEARCH METADATA INPROGRESS APPENDLIMIT=67108864] Logged in.\r\n"
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
        "c NO [TOOBIG] Command too large.\r\nd OK NOOP completed.\r\n"
    );
}

/// Issue 19: a non-synchronising literal over the limit is answered as soon as it is
/// announced (RFC 7888 §4 allows it), not after its octets: a client announcing 64 MiB + 1
/// and sending nothing got no answer at all. The octets that do come are skipped.
#[test]
fn an_oversized_non_sync_literal_is_answered_at_once() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    h.send("a LOGIN alice wonderland\r\n");
    assert_eq!(
        h.send("b APPEND INBOX {67108865+}\r\n"),
        "b NO [TOOBIG] Command too large.\r\n"
    );
    // Some of the announced octets, then more: skipped, never answered again.
    assert_eq!(h.send(&"x".repeat(100_000)), "");
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(
        h.send("c LOGIN {9000+}\r\n"),
        "c NO [TOOBIG] Command too large.\r\n"
    );
    assert_eq!(
        h.send(&format!("{} x\r\nd NOOP\r\n", "x".repeat(9000))),
        "d OK NOOP completed.\r\n"
    );
}

/// RFC 7888 §5: with `imap_literal_minus` the server names LITERAL- (never beside LITERAL+),
/// before and after login; a `{n+}` literal over 4096 octets is a BAD [TOOBIG] (for APPEND
/// the code is required) whatever the literal limit, and its octets are skipped so the next
/// command is answered; up to 4096, and any synchronising literal, work as before.
#[test]
fn literal_minus_is_advertised_and_caps_non_sync_literals() {
    let mut config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
    config.limits.imap_literal_minus = true;
    let mut h = Harness::with_config(config);
    let greeting = h.take();
    assert!(greeting.contains(" LITERAL- "), "{greeting}");
    assert!(!greeting.contains("LITERAL+"), "{greeting}");
    let login = h.send("a LOGIN alice wonderland\r\n");
    assert!(login.contains(" LITERAL- "), "{login}");
    assert!(!login.contains("LITERAL+"), "{login}");
    let big = format!("Subject: x\r\n\r\n{}", "y".repeat(4097 - 14));
    assert_eq!(big.len(), 4097);
    assert_eq!(
        h.send(&format!("b APPEND INBOX {{4097+}}\r\n{big}\r\nc NOOP\r\n")),
        "b BAD [TOOBIG] Non-synchronizing literals carry at most 4096 octets.\r\n\
         c OK NOOP completed.\r\n"
    );
    let fits = &big[..4096];
    let ok = h.send(&format!("d APPEND INBOX {{4096+}}\r\n{fits}\r\n"));
    assert!(ok.starts_with("d OK [APPENDUID "), "{ok}");
    assert_eq!(
        h.send("e APPEND INBOX {4097}\r\n"),
        "+ Ready for literal data\r\n"
    );
    let ok = h.send(&format!("{big}\r\n"));
    assert!(ok.starts_with("e OK [APPENDUID "), "{ok}");
}

impl Harness {
    /// Sends `data` and runs the session until it asks storage for something, which is held
    /// back and returned with what was written meanwhile.
    fn send_and_hold(&mut self, data: &str) -> (String, tern_core::StorageRequest) {
        self.session
            .handle_input(Input::Bytes {
                now: self.now,
                data: data.as_bytes(),
            })
            .unwrap();
        let mut wire = Vec::new();
        loop {
            match self.session.poll_output() {
                tern_core::Output::Transmit(b) => wire.extend_from_slice(&b),
                tern_core::Output::Storage(request) => {
                    return (String::from_utf8(wire).unwrap(), request)
                }
                tern_core::Output::Event(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Answers a held storage request and returns what the server wrote then.
    fn release(&mut self, request: tern_core::StorageRequest) -> String {
        use tern_core::Store;
        let reply = self.store.execute(request.op);
        self.session
            .handle_input(Input::Storage {
                now: self.now,
                id: request.id,
                reply,
            })
            .unwrap();
        self.pump();
        self.take()
    }
}

/// RFC 9585 §4: a command still waiting on storage 12 seconds after it began is announced
/// with `* OK [INPROGRESS (tag done goal)]`, again every 12 seconds, never in a tagged
/// response; the counts are messages for FETCH. A tag holding "]" is sent as NIL. A command
/// that finished in time, and IDLE's own looks at the mailbox, get nothing.
#[test]
fn rfc9585_4_a_long_wait_on_storage_is_announced_with_inprogress() {
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    h.send("a LOGIN alice wonderland\r\n");
    for n in 0..3 {
        h.send(&format!("b{n} APPEND INBOX {{1+}}\r\n{n}\r\n"));
    }
    assert!(h.send("c SELECT INBOX\r\n").contains("c OK"));
    // Answered at once: the timer finds nothing to report.
    assert!(h.send("d NOOP\r\n").starts_with("d OK"));
    assert_eq!(h.advance(Duration::from_secs(30)), "");

    let (written, held) = h.send_and_hold("f1 FETCH 1:* (FLAGS)\r\n");
    assert_eq!(written, "");
    assert_eq!(h.advance(Duration::from_secs(11)), "");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        "* OK [INPROGRESS (\"f1\" 0 3)] Still working.\r\n"
    );
    assert_eq!(h.advance(Duration::from_secs(11)), "");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        "* OK [INPROGRESS (\"f1\" 0 3)] Still working.\r\n"
    );
    let answer = h.release(held);
    assert!(answer.ends_with("f1 OK FETCH completed.\r\n"), "{answer}");
    assert!(!answer.contains("INPROGRESS"), "{answer}");
    assert_eq!(h.advance(Duration::from_secs(30)), "");

    let (_, held) = h.send_and_hold("x] SEARCH ALL\r\n");
    assert_eq!(
        h.advance(Duration::from_secs(12)),
        "* OK [INPROGRESS (NIL NIL NIL)] Still working.\r\n"
    );
    assert!(h.release(held).contains("x] OK"));

    // IDLE's keepalive look at the mailbox is not a command the client waits for.
    assert_eq!(h.send("i IDLE\r\n"), "+ idling\r\n");
    let out = h.advance(Duration::from_secs(120));
    assert!(!out.contains("INPROGRESS"), "{out}");
}

/// RFC 5464: the configured administrator contact is the read-only server entry
/// `/shared/admin` (§3.2.1.1), found by DEPTH too; SETMETADATA past the store's entry limit is
/// `NO [METADATA TOOMANY]` and sets none of its entries (§4.3).
#[test]
fn rfc5464_admin_entry_and_too_many_entries() {
    let mut config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
    config.imap_admin = Some("mailto:postmaster@example.org".into());
    let mut h = Harness::with_config(config);
    h.store.set_limits(tern_core::store::StoreLimits {
        metadata_entries: 2,
        ..Default::default()
    });
    h.take();
    h.send("a LOGIN alice wonderland\r\n");
    assert_eq!(
        h.send("b GETMETADATA \"\" /shared/admin\r\n"),
        "* METADATA \"\" (/shared/admin \"mailto:postmaster@example.org\")\r\n\
         b OK GETMETADATA completed.\r\n"
    );
    assert_eq!(
        h.send("c GETMETADATA (DEPTH infinity) \"\" /shared\r\n"),
        "* METADATA \"\" (/shared/admin \"mailto:postmaster@example.org\")\r\n\
         c OK GETMETADATA completed.\r\n"
    );
    assert_eq!(
        h.send("d SETMETADATA \"\" (/shared/admin \"mailto:me@example.org\")\r\n"),
        "d NO [CANNOT] /shared/admin is read-only.\r\n"
    );
    // A mailbox has no such entry.
    assert_eq!(
        h.send("e GETMETADATA INBOX /shared/admin\r\n"),
        "* METADATA INBOX (/shared/admin NIL)\r\ne OK GETMETADATA completed.\r\n"
    );
    assert_eq!(
        h.send("f SETMETADATA INBOX (/private/a \"1\" /private/b \"2\" /private/c \"3\")\r\n"),
        "f NO [METADATA TOOMANY] Too many entries.\r\n"
    );
    assert_eq!(
        h.send("g GETMETADATA (DEPTH 1) INBOX /private\r\n"),
        "g OK GETMETADATA completed.\r\n"
    );
    assert_eq!(
        h.send("h SETMETADATA INBOX (/private/a \"1\" /private/b \"2\")\r\n"),
        "h OK SETMETADATA completed.\r\n"
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
        "+OK Capability list follows.\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nSASL SCRAM-SHA-256\r\nSTLS\r\nIMPLEMENTATION tern\r\n.\r\n"
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
        .handle_input(Input::TlsEstablished {
            now: h.now,
            channel_bindings: Default::default(),
        })
        .unwrap();
    h.pump();
    assert_eq!(
        h.send("CAPA\r\n"),
        "+OK Capability list follows.\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nUSER\r\nSASL SCRAM-SHA-256 PLAIN LOGIN\r\nIMPLEMENTATION tern\r\n.\r\n"
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
    assert_eq!(
        h.send("AUTH\r\n"),
        "+OK\r\nSCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n"
    );
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
    let mut h = pop3_logged_in();
    assert_eq!(h.advance(Duration::from_secs(599)), "");
    // Bytes that never complete a line are not activity.
    assert_eq!(h.send("NOO"), "");
    assert_eq!(h.advance(Duration::from_secs(1)), "");
    assert_eq!(h.blocked, Blocked::Close);
}

#[test]
fn strangers_are_closed_a_minute_after_connecting_whatever_they_send() {
    let mut h = pop3(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(h.advance(Duration::from_secs(59)), "");
    assert_eq!(h.send("USER alice\r\n"), "+OK\r\n");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        "-ERR Login timed out.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    assert_eq!(h.send("a NOOP\r\n"), "a OK NOOP completed.\r\n");
    assert_eq!(
        h.advance(Duration::from_secs(60)),
        "* BYE Login timed out.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
}

fn append(h: &mut Harness, raw: &str) {
    use tern_core::store::NewMessage;
    use tern_core::{StorageOp, Store};
    h.store
        .execute(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: vec![],
                internal_date: None,
                data: bytes::Bytes::copy_from_slice(raw.as_bytes()),
            }],
        })
        .unwrap();
}

fn pop3_logged_in() -> Harness {
    let mut h = pop3(Transport::ImplicitTls, false);
    append(&mut h, "Subject: one\r\n\r\nfirst\r\n.hidden dot\r\n");
    append(&mut h, "Subject: two\r\n\r\nl1\r\nl2\r\nl3\r\n");
    h.take();
    assert_eq!(
        h.send("USER alice\r\nPASS wonderland\r\n"),
        "+OK\r\n+OK Logged in.\r\n"
    );
    h
}

#[test]
fn rfc1939_5_stat_list_uidl_retr_top() {
    let mut h = pop3_logged_in();
    assert_eq!(h.send("STAT\r\n"), "+OK 2 64\r\n");
    assert_eq!(
        h.send("LIST\r\n"),
        "+OK 2 messages:\r\n1 36\r\n2 28\r\n.\r\n"
    );
    assert_eq!(h.send("LIST 2\r\n"), "+OK 2 28\r\n");
    assert_eq!(h.send("LIST 3\r\n"), "-ERR There is no such message.\r\n");
    let uidl = h.send("UIDL\r\n");
    let lines: Vec<&str> = uidl.lines().collect();
    assert_eq!(lines.len(), 4, "{uidl}");
    assert!(lines[1].starts_with("1 00000001") && lines[2].starts_with("2 00000002"));
    // RFC 1939 §3: a line starting with "." is byte-stuffed.
    assert_eq!(
        h.send("RETR 1\r\n"),
        "+OK 36 octets\r\nSubject: one\r\n\r\nfirst\r\n..hidden dot\r\n.\r\n"
    );
    assert_eq!(
        h.send("TOP 2 1\r\n"),
        "+OK\r\nSubject: two\r\n\r\nl1\r\n.\r\n"
    );
    assert_eq!(h.send("TOP 2 0\r\n"), "+OK\r\nSubject: two\r\n\r\n.\r\n");
}

#[test]
fn rfc1939_6_dele_rset_and_quit_update() {
    let mut h = pop3_logged_in();
    assert_eq!(h.send("DELE 1\r\n"), "+OK Marked to be deleted.\r\n");
    assert_eq!(h.send("DELE 1\r\n"), "-ERR Message is deleted.\r\n");
    assert_eq!(h.send("RETR 1\r\n"), "-ERR Message is deleted.\r\n");
    assert_eq!(h.send("STAT\r\n"), "+OK 1 28\r\n");
    assert_eq!(h.send("RSET\r\n"), "+OK 2 messages.\r\n");
    assert_eq!(h.send("STAT\r\n"), "+OK 2 64\r\n");
    assert_eq!(
        h.send("DELE 2\r\nQUIT\r\n"),
        "+OK Marked to be deleted.\r\n+OK Logging out.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
    // A new session sees only the first message, still as message 1.
    let config = {
        let mut c = SessionConfig::new(Protocol::Pop3, Transport::ImplicitTls);
        c.plaintext_auth_without_tls = true;
        c
    };
    h.session = Session::new(config, h.now);
    h.pump();
    h.take();
    assert_eq!(
        h.send("USER alice\r\nPASS wonderland\r\nSTAT\r\n"),
        "+OK\r\n+OK Logged in.\r\n+OK 1 36\r\n"
    );
}

#[test]
fn rfc1939_8_second_session_gets_in_use_and_a_drop_deletes_nothing() {
    let mut h = pop3_logged_in();
    assert_eq!(h.send("DELE 1\r\n"), "+OK Marked to be deleted.\r\n");
    let first = std::mem::replace(
        &mut h.session,
        Session::new(
            SessionConfig::new(Protocol::Pop3, Transport::ImplicitTls),
            h.now,
        ),
    );
    h.pump();
    h.take();
    assert_eq!(
        h.send("USER alice\r\nPASS wonderland\r\n"),
        "+OK\r\n-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    );
    // The first session's connection drops: no UPDATE, and the lock is released.
    h.session = first;
    h.session
        .handle_input(Input::PeerClosed { now: h.now })
        .unwrap();
    h.pump();
    h.session = Session::new(
        SessionConfig::new(Protocol::Pop3, Transport::ImplicitTls),
        h.now,
    );
    h.pump();
    h.take();
    assert_eq!(
        h.send("USER alice\r\nPASS wonderland\r\nSTAT\r\n"),
        "+OK\r\n+OK Logged in.\r\n+OK 2 64\r\n"
    );
}

/// The test's side of a SCRAM exchange, base64 on the wire as IMAP and POP3 carry it.
mod scram_client {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use tern_core::sasl::ScramClient;

    pub struct Client(ScramClient);

    impl Client {
        pub fn new(user: &str, cbind: Option<&[u8]>) -> Client {
            Client(ScramClient::new(user, "clientnonce123", cbind))
        }

        pub fn first(&self) -> String {
            B64.encode(self.0.client_first())
        }

        pub fn last(&self, server_first_b64: &str, password: &str) -> String {
            let server_first = B64.decode(server_first_b64).unwrap();
            B64.encode(self.0.client_final(&server_first, password).unwrap())
        }
    }
}

fn challenge(line: &str) -> String {
    line.strip_prefix("+ ").unwrap().trim_end().to_string()
}

#[test]
fn rfc7677_scram_sha_256_over_imap_and_pop3() {
    use scram_client::Client;
    let mut h = imap(Transport::Plaintext, false);
    h.take();
    let c = Client::new("alice", None);
    let first = h.send(&format!("a AUTHENTICATE SCRAM-SHA-256 {}\r\n", c.first()));
    let last = c.last(&challenge(&first), "wonderland");
    let server_final = h.send(&format!("{last}\r\n"));
    assert!(server_final.starts_with("+ "), "{server_final}");
    let ok = h.send("\r\n");
    assert!(ok.starts_with("a OK [CAPABILITY IMAP4rev1"), "{ok}");
    assert_eq!(h.session.account(), Some("alice"));

    // A wrong password fails after the tarpit, like any failed login.
    let mut h = imap(Transport::Plaintext, false);
    h.take();
    let first = h.send(&format!("b AUTHENTICATE SCRAM-SHA-256 {}\r\n", c.first()));
    let last = c.last(&challenge(&first), "wrong");
    assert_eq!(h.send(&format!("{last}\r\n")), "");
    assert_eq!(
        h.advance(Duration::from_secs(2)),
        "b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );

    let mut h = pop3(Transport::Plaintext, false);
    h.take();
    let first = h.send(&format!("AUTH SCRAM-SHA-256 {}\r\n", c.first()));
    let last = c.last(&challenge(&first), "wonderland");
    assert!(h.send(&format!("{last}\r\n")).starts_with("+ "));
    assert_eq!(h.send("\r\n"), "+OK Logged in.\r\n");
}

#[test]
fn rfc9266_scram_plus_checks_the_channel_binding() {
    use scram_client::Client;
    let bindings = tern_core::sasl::ChannelBindings {
        tls_exporter: Some(vec![7; 32]),
        tls_server_end_point: None,
    };
    let start = |bindings: &tern_core::sasl::ChannelBindings| {
        let mut config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
        config.channel_bindings = bindings.clone();
        let store = MemStore::new();
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "wonderland");
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut h = Harness {
            session: Session::new(config, now),
            store,
            directory,
            now,
            wire: Vec::new(),
            blocked: Blocked::Close,
        };
        h.pump();
        h
    };
    let mut h = start(&bindings);
    assert!(h.take().contains("AUTH=SCRAM-SHA-256-PLUS"));
    let good = Client::new("alice", Some(&[7; 32]));
    let first = h.send(&format!(
        "a AUTHENTICATE SCRAM-SHA-256-PLUS {}\r\n",
        good.first()
    ));
    let last = good.last(&challenge(&first), "wonderland");
    assert!(h.send(&format!("{last}\r\n")).starts_with("+ "));
    assert!(h.send("\r\n").starts_with("a OK"));

    // A man in the middle terminates TLS itself: the client's binding differs.
    let mut h = start(&bindings);
    h.take();
    let bad = Client::new("alice", Some(&[8; 32]));
    let first = h.send(&format!(
        "a AUTHENTICATE SCRAM-SHA-256-PLUS {}\r\n",
        bad.first()
    ));
    let last = bad.last(&challenge(&first), "wonderland");
    assert_eq!(
        h.send(&format!("{last}\r\n")),
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    // Without bindings, -PLUS is neither offered nor accepted.
    let mut h = start(&Default::default());
    assert!(!h.take().contains("SCRAM-SHA-256-PLUS"));
    assert!(h
        .send("a AUTHENTICATE SCRAM-SHA-256-PLUS\r\n")
        .starts_with("a NO"));
}

/// A POP3 session that ends while a request is in flight (the client left during a RETR) sends
/// the release of its maildrop lock only once that request's reply is in: one request at a
/// time, even on the way out. The messages it retrieved get `\Seen` in the same request.
#[test]
fn pop3_ends_with_one_request_in_flight_at_a_time() {
    use tern_core::{Output, StorageOp, Store};
    let mut h = pop3_logged_in();
    assert!(h.send("RETR 1\r\n").starts_with("+OK"));
    // The next RETR's request is left unanswered: the driver still runs it when the peer goes.
    h.session
        .handle_input(Input::Bytes {
            now: h.now,
            data: b"RETR 2\r\n",
        })
        .unwrap();
    let fetch = loop {
        match h.session.poll_output() {
            Output::Storage(request) => break request,
            Output::Timeout(_) | Output::Close => panic!("no request for RETR 2"),
            _ => {}
        }
    };
    h.session
        .handle_input(Input::PeerClosed { now: h.now })
        .unwrap();
    assert!(
        matches!(h.session.poll_output(), Output::Timeout(_)),
        "nothing more until the reply is in"
    );
    assert!(h
        .store
        .execute(StorageOp::LockMaildrop {
            account: "alice".into()
        })
        .is_err());
    let reply = h.store.execute(fetch.op);
    h.session
        .handle_input(Input::Storage {
            now: h.now,
            id: fetch.id,
            reply,
        })
        .unwrap();
    let release = match h.session.poll_output() {
        Output::Storage(request) => request,
        other => panic!("expected the release, got {other:?}"),
    };
    match &release.op {
        StorageOp::UnlockMaildrop {
            seen: Some((_, uids)),
            ..
        } => assert_eq!(uids, &vec![1]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(h.session.poll_output(), Output::Timeout(_)));
    let reply = h.store.execute(release.op);
    h.session
        .handle_input(Input::Storage {
            now: h.now,
            id: release.id,
            reply,
        })
        .unwrap();
    assert!(matches!(h.session.poll_output(), Output::Close));
    // Released: another session may take the maildrop.
    assert!(h
        .store
        .execute(StorageOp::LockMaildrop {
            account: "alice".into()
        })
        .is_ok());
}

/// Polls until the session emits a request of either kind, collecting what it transmits.
fn next_request(h: &mut Harness) -> tern_core::Output {
    use tern_core::Output;
    loop {
        match h.session.poll_output() {
            Output::Transmit(bytes) => h.wire.extend_from_slice(&bytes),
            out @ (Output::Storage(_) | Output::Directory(_)) => return out,
            Output::Timeout(_) | Output::Close => panic!("no request"),
            _ => {}
        }
    }
}

/// Sends `line` without answering the request it causes.
fn send_unanswered(h: &mut Harness, line: &str) -> tern_core::Output {
    h.session
        .handle_input(Input::Bytes {
            now: h.now,
            data: line.as_bytes(),
        })
        .unwrap();
    next_request(h)
}

/// Authentication is the directory's business: LOGIN and USER/PASS ask the directory, never
/// storage, and the session waits for that reply (nothing is read or answered meanwhile, and a
/// storage reply cannot stand in for it).
#[test]
fn logins_ask_the_directory_and_await_its_reply() {
    use tern_core::{DirectoryOp, Output};
    for protocol in [Protocol::Imap, Protocol::Pop3] {
        let mut h = Harness::new(protocol, Transport::Plaintext, true);
        h.take();
        let line = match protocol {
            Protocol::Imap => "a LOGIN alice wonderland\r\nb NOOP\r\n",
            Protocol::Pop3 => {
                assert!(h.send("USER alice\r\n").starts_with("+OK"));
                "PASS wonderland\r\nNOOP\r\n"
            }
            Protocol::Lmtp => unreachable!("LMTP has no login"),
        };
        let Output::Directory(request) = send_unanswered(&mut h, line) else {
            panic!("{protocol:?}: the login went to storage");
        };
        match &request.op {
            DirectoryOp::Authenticate { username, password } => {
                assert_eq!(username, "alice");
                assert_eq!(password.expose(), b"wonderland");
            }
            other => panic!("{other:?}"),
        }
        // Waiting: the pipelined NOOP stays buffered until the verdict is in.
        assert!(matches!(h.session.poll_output(), Output::Timeout(_)));
        assert_eq!(h.session.account(), None);
        use tern_core::Directory;
        let reply = h.directory.answer(request.op);
        h.session
            .handle_input(Input::Directory {
                now: h.now,
                id: request.id,
                reply,
            })
            .unwrap();
        h.pump();
        let out = h.take();
        assert_eq!(h.session.account(), Some("alice"), "{out}");
        match protocol {
            Protocol::Imap => assert!(out.contains("a OK [CAPABILITY") && out.contains("b OK")),
            Protocol::Pop3 => assert_eq!(out, "+OK Logged in.\r\n+OK\r\n"),
            Protocol::Lmtp => unreachable!("LMTP has no login"),
        }
    }
}

/// A driver that feeds a storage reply to the directory request in flight (or a directory
/// reply to a storage request) has a bug: the session reports it, answers the command as an
/// internal error, and stays usable; it never panics or takes one reply for the other.
#[test]
fn a_reply_of_the_wrong_kind_is_an_internal_error() {
    use tern_core::{
        AuthOutcome, DirectoryReply, MisuseError, Output, StorageReply, StorageResult,
    };
    // IMAP LOGIN answered by storage.
    let mut h = imap(Transport::Plaintext, true);
    h.take();
    let Output::Directory(request) = send_unanswered(&mut h, "a LOGIN alice wonderland\r\n") else {
        panic!("LOGIN went to storage");
    };
    let wrong: StorageResult = Ok(StorageReply::Done);
    assert_eq!(
        h.session.handle_input(Input::Storage {
            now: h.now,
            id: request.id,
            reply: wrong,
        }),
        Err(MisuseError::WrongReplyKind(request.id))
    );
    h.pump();
    assert_eq!(
        h.take(),
        "a NO [SERVERBUG] Internal error; the administrator has the details.\r\n"
    );
    assert_eq!(h.session.account(), None);
    // The right reply now comes too late: the session no longer waits for anything.
    assert_eq!(
        h.session.handle_input(Input::Directory {
            now: h.now,
            id: request.id,
            reply: Ok(DirectoryReply::Authenticated(AuthOutcome::Accepted {
                account: "alice".into(),
                quota: Default::default(),
            })),
        }),
        Err(MisuseError::UnknownRequest(request.id))
    );
    assert_eq!(h.session.account(), None);
    assert!(h.send("b LOGIN alice wonderland\r\n").starts_with("b OK"));

    // An IMAP storage request answered by the directory.
    let Output::Storage(request) = send_unanswered(&mut h, "c LIST \"\" *\r\n") else {
        panic!("LIST went to the directory");
    };
    assert_eq!(
        h.session.handle_input(Input::Directory {
            now: h.now,
            id: request.id,
            reply: Ok(DirectoryReply::Authenticated(AuthOutcome::Accepted {
                account: "mallory".into(),
                quota: Default::default(),
            })),
        }),
        Err(MisuseError::WrongReplyKind(request.id))
    );
    h.pump();
    assert_eq!(
        h.take(),
        "c NO [SERVERBUG] Internal error; the administrator has the details.\r\n"
    );
    assert_eq!(h.session.account(), Some("alice"));
    assert!(h.send("d NOOP\r\n").starts_with("d OK"));

    // POP3 PASS answered by storage: a temporary failure, and the session goes on.
    let mut h = pop3(Transport::Plaintext, true);
    h.take();
    assert!(h.send("USER alice\r\n").starts_with("+OK"));
    let Output::Directory(request) = send_unanswered(&mut h, "PASS wonderland\r\n") else {
        panic!("PASS went to storage");
    };
    assert_eq!(
        h.session.handle_input(Input::Storage {
            now: h.now,
            id: request.id,
            reply: Ok(StorageReply::Done),
        }),
        Err(MisuseError::WrongReplyKind(request.id))
    );
    h.pump();
    assert_eq!(
        h.take(),
        "-ERR [SYS/TEMP] Temporary server failure; try again later.\r\n"
    );
    assert_eq!(h.session.account(), None);
    // RFC 1939 §7: after a refused PASS, the client starts again with USER.
    assert!(h.send("USER alice\r\n").starts_with("+OK"));
    assert_eq!(h.send("PASS wonderland\r\n"), "+OK Logged in.\r\n");
}

/// RFC 8437 §3: UNAUTHENTICATE ends the session's hold on its account. The driver hears of it
/// (an `Unauthenticated` event before the OK, to give back the account's connection slot and
/// change notices), `account()` is `None` again, and the connection is a stranger once more:
/// closed a minute later unless it logs in again.
#[test]
fn rfc8437_unauthenticate_gives_up_the_account_and_rearms_the_login_timeout() {
    use tern_core::{Event, Output};
    let mut h = imap(Transport::ImplicitTls, false);
    h.take();
    assert!(h
        .send("a LOGIN alice wonderland\r\n")
        .starts_with("a OK [CAPABILITY"));
    assert_eq!(h.advance(Duration::from_secs(120)), "");
    h.session
        .handle_input(Input::Bytes {
            now: h.now,
            data: b"u UNAUTHENTICATE\r\n",
        })
        .unwrap();
    let mut seen_event = false;
    loop {
        match h.session.poll_output() {
            Output::Event(Event::Unauthenticated) => {
                assert!(h.wire.is_empty(), "the event comes before the OK");
                seen_event = true;
            }
            Output::Transmit(bytes) => h.wire.extend_from_slice(&bytes),
            Output::Timeout(_) => break,
            other @ (Output::Storage(_) | Output::Directory(_) | Output::Close) => {
                panic!("{other:?}")
            }
            _ => {}
        }
    }
    assert!(seen_event);
    assert_eq!(h.take(), "u OK UNAUTHENTICATE completed.\r\n");
    assert_eq!(h.session.account(), None);
    assert_eq!(h.advance(Duration::from_secs(59)), "");
    assert_eq!(
        h.advance(Duration::from_secs(1)),
        "* BYE Login timed out.\r\n"
    );
    assert_eq!(h.blocked, Blocked::Close);
}

/// RFC 8437 §8: "implementations of this extension MUST provide a way to disable it". Turned
/// off, UNAUTHENTICATE is neither advertised nor accepted.
#[test]
fn rfc8437_8_unauthenticate_can_be_turned_off() {
    let mut config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
    config.imap_unauthenticate = false;
    let mut h = Harness::with_config(config);
    h.take();
    let login = h.send("a LOGIN alice wonderland\r\n");
    assert!(login.starts_with("a OK [CAPABILITY"), "{login}");
    assert!(!login.contains("UNAUTHENTICATE"), "{login}");
    assert!(!h.send("b CAPABILITY\r\n").contains("UNAUTHENTICATE"));
    assert_eq!(
        h.send("c UNAUTHENTICATE\r\n"),
        "c BAD Command not supported.\r\n"
    );
    assert_eq!(h.session.account(), Some("alice"));
}
