//! The LMTP session against `MemStore` and `MemDirectory`, RFC section by section.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::drive::{pump, Blocked};
use crate::store::{Body, FetchWant, StorageOp, StorageReply, Store};
use crate::{
    Directory, DirectoryOp, DirectoryResult, Input, MemDirectory, MemStore, Protocol, Session,
    SessionConfig, StorageError, StorageResult, Transport,
};

struct Harness {
    session: Session,
    store: MemStore,
    directory: MemDirectory,
    now: Instant,
    closed: bool,
}

impl Harness {
    fn new() -> Harness {
        Self::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut SessionConfig)) -> Harness {
        let mut config = SessionConfig::new(Protocol::Lmtp, Transport::Plaintext);
        config.server_name = "mx.test".into();
        adjust(&mut config);
        let now = origin();
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "x");
        directory.add_user("bob", "x");
        let mut h = Harness {
            session: Session::new(config, now),
            store: MemStore::new(),
            directory,
            now,
            closed: false,
        };
        assert_eq!(h.drain(), "220 mx.test LMTP ready\r\n");
        h
    }

    fn drain(&mut self) -> String {
        let mut wire = Vec::new();
        let blocked = pump(
            &mut self.session,
            &mut self.store,
            &mut self.directory,
            self.now,
            &mut |b| wire.extend_from_slice(b),
        )
        .unwrap();
        self.closed |= blocked == Blocked::Close;
        String::from_utf8(wire).unwrap()
    }

    fn send(&mut self, data: &str) -> String {
        self.send_bytes(data.as_bytes())
    }

    fn send_bytes(&mut self, data: &[u8]) -> String {
        let now = self.now;
        self.session
            .handle_input(Input::Bytes { now, data })
            .unwrap();
        self.drain()
    }

    /// The stored messages of a mailbox, oldest first.
    fn messages(&mut self, account: &str, name: &str) -> Vec<String> {
        let opened = self.store.execute(StorageOp::Open {
            account: account.into(),
            name: name.into(),
            read_only: true,
        });
        let Ok(StorageReply::Opened(snapshot)) = opened else {
            return Vec::new();
        };
        let fetched = self.store.execute(StorageOp::Fetch {
            account: account.into(),
            mailbox: snapshot.id,
            uids: snapshot.uids.to_vec(),
            want: FetchWant {
                content: true,
                info: false,
                header_only: false,
                ..Default::default()
            },
            mark_seen: false,
        });
        let Ok(StorageReply::Fetched(messages)) = fetched else {
            panic!("fetch failed: {fetched:?}");
        };
        messages
            .into_iter()
            .map(|m| match m.content {
                Some(Body::Inline(b)) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("unexpected body {other:?}"),
            })
            .collect()
    }
}

/// Any origin will do: the session only adds to it. (Marked as test code for the no-I/O
/// scan, which reads this file without knowing the module is test-only.)
#[allow(clippy::disallowed_methods)]
#[cfg(test)]
fn origin() -> Instant {
    Instant::now()
}

const ENVELOPE: &str = "LHLO mta.test\r\nMAIL FROM:<sender@remote.test>\r\n";

#[test]
fn lhlo_advertises_the_extensions_and_the_size_limit() {
    // RFC 2033 §4.1 (LHLO), RFC 1870 §4 (SIZE with the limit), RFC 3030 §2 (CHUNKING).
    let mut h = Harness::new();
    assert_eq!(
        h.send("LHLO mta.test\r\n"),
        "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
         250-CHUNKING\r\n250 SIZE 67108864\r\n"
    );
}

#[test]
fn one_reply_per_accepted_recipient_after_data() {
    // RFC 2033 §4.2: after the final dot, one reply for each RCPT that succeeded, in order;
    // the refused one gets none. Pipelined (RFC 2920) in a single write.
    let mut h = Harness::new();
    let out = h.send(&format!(
        "{ENVELOPE}RCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n\
         RCPT TO:<BOB@example.org>\r\nDATA\r\nSubject: hi\r\n\r\nHello\r\n.\r\nQUIT\r\n"
    ));
    let lines: Vec<&str> = out.lines().skip(6).collect();
    assert_eq!(
        lines,
        [
            "250 2.1.0 Sender OK",
            "250 2.1.5 <alice@example.org> Recipient OK",
            "550 5.1.1 <nobody@example.org> No such user here",
            "250 2.1.5 <BOB@example.org> Recipient OK",
            "354 Start mail input; end with <CRLF>.<CRLF>",
            "250 2.0.0 <alice@example.org> Delivered",
            "250 2.0.0 <BOB@example.org> Delivered",
            "221 2.0.0 mx.test Bye",
        ]
    );
    assert!(h.closed);
    assert_eq!(
        h.messages("alice", "INBOX"),
        [
            "Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.org\r\n\
          Subject: hi\r\n\r\nHello\r\n"
        ]
    );
    assert_eq!(h.messages("bob", "INBOX").len(), 1);
}

#[test]
fn data_is_dot_unstuffed_and_bare_line_feeds_become_crlf() {
    // RFC 5321 §4.5.2: the client doubled every leading dot; the server removes one.
    let mut h = Harness::new();
    h.send(&format!("{ENVELOPE}RCPT TO:<alice>\r\n"));
    let out = h.send("DATA\r\nA: b\n\n..one\r\n...\r\n.\r\n");
    assert!(out.ends_with("250 2.0.0 <alice> Delivered\r\n"), "{out}");
    assert_eq!(
        h.messages("alice", "INBOX"),
        ["Return-Path: <sender@remote.test>\r\nDelivered-To: alice\r\nA: b\r\n\r\n.one\r\n..\r\n"]
    );
}

#[test]
fn bdat_chunks_are_taken_verbatim_and_last_gets_one_reply_per_recipient() {
    // RFC 3030 §2: BDAT octets are not dot-stuffed; every chunk but the last gets one reply,
    // the last one reply per recipient (RFC 2033 §4.2 applies to BDAT LAST).
    let mut h = Harness::new();
    h.send(&format!(
        "{ENVELOPE}RCPT TO:<alice@x.test>\r\nRCPT TO:<bob@x.test>\r\n"
    ));
    // The chunk arrives in pieces, the command of the next in the same write as its end.
    assert_eq!(h.send("BDAT 12\r\nA: b\r\n"), "");
    assert_eq!(
        h.send("\r\n.x\r\nBDAT 3 LAST\r\n"),
        "250 2.0.0 12 octets received\r\n"
    );
    let out = h.send(".\r\n");
    assert_eq!(
        out,
        "250 2.0.0 <alice@x.test> Delivered\r\n250 2.0.0 <bob@x.test> Delivered\r\n"
    );
    assert_eq!(
        h.messages("bob", "INBOX"),
        ["Return-Path: <sender@remote.test>\r\nDelivered-To: bob@x.test\r\nA: b\r\n\r\n.x\r\n.\r\n"]
    );
    // DATA after BDAT in a new transaction is fine; BDAT without recipients is read and refused.
    assert_eq!(
        h.send("MAIL FROM:<>\r\nBDAT 7 LAST\r\nRCPT \r\nNOOP\r\n"),
        "250 2.1.0 Sender OK\r\n503 5.5.1 No valid recipients\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn detail_delivers_to_an_existing_folder_else_inbox() {
    let mut h = Harness::new();
    h.store
        .execute(StorageOp::CreateMailbox {
            account: "alice".into(),
            name: "lists".into(),
            special_use: None,
        })
        .unwrap();
    let out = h.send(&format!(
        "{ENVELOPE}RCPT TO:<alice+lists@example.org>\r\nRCPT TO:<bob+none@example.org>\r\n\
         DATA\r\n\r\nx\r\n.\r\n"
    ));
    assert!(out.contains("250 2.1.5 <alice+lists@example.org>"), "{out}");
    assert!(
        out.ends_with(
            "250 2.0.0 <alice+lists@example.org> Delivered\r\n\
             250 2.0.0 <bob+none@example.org> Delivered\r\n"
        ),
        "{out}"
    );
    assert_eq!(h.messages("alice", "lists").len(), 1);
    assert_eq!(h.messages("alice", "INBOX").len(), 0);
    assert_eq!(h.messages("bob", "INBOX").len(), 1);
}

#[test]
fn sequence_errors_get_503_and_the_session_goes_on() {
    // RFC 5321 §3.3 / §4.1.4: DATA without a valid RCPT, RCPT without MAIL, nested MAIL.
    let mut h = Harness::new();
    assert_eq!(
        h.send("MAIL FROM:<a@b>\r\n"),
        "503 5.5.1 Send LHLO first\r\n"
    );
    assert_eq!(
        h.send("LHLO x\r\nRCPT TO:<alice>\r\nDATA\r\n")
            .lines()
            .last(),
        Some("503 5.5.1 MAIL first")
    );
    assert_eq!(
        h.send("MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nRCPT TO:<nobody>\r\nDATA\r\n"),
        "250 2.1.0 Sender OK\r\n503 5.5.1 Nested MAIL command\r\n\
         550 5.1.1 <nobody> No such user here\r\n503 5.5.1 No valid recipients\r\n"
    );
    assert_eq!(
        h.send("VRFY alice\r\nHELO x\r\nFOO\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\nRSET\r\n"),
        "252 2.3.3 Try RCPT instead\r\n\
         500 5.5.1 This is LMTP: use LHLO (RFC 2033 §4.1)\r\n500 5.5.2 Unknown command\r\n\
         555 5.5.4 Unsupported mail BODY type.\r\n\
         250 2.0.0 OK\r\n"
    );
    assert!(!h.closed);
}

#[test]
fn an_overlong_command_line_is_refused_and_the_next_one_served() {
    // RFC 5321 §4.5.3.1.4 / §4.5.3.1.6: lines are bounded; 500 and go on.
    let mut h = Harness::new();
    let long = format!("NOOP {}\r\nNOOP\r\n", "x".repeat(5000));
    assert_eq!(h.send(&long), "500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n");
}

#[test]
fn recipients_are_bounded() {
    // RFC 5321 §4.5.3.1.10: past the limit, 452 and the client sends the rest later.
    let mut h = Harness::with(|c| c.limits.lmtp_max_recipients = 3);
    let mut script = ENVELOPE.to_string();
    for _ in 0..5 {
        script.push_str("RCPT TO:<alice>\r\n");
    }
    let out = h.send(&script);
    assert_eq!(out.matches("250 2.1.5").count(), 3, "{out}");
    assert_eq!(
        out.matches("452 4.5.3 Too many recipients").count(),
        2,
        "{out}"
    );
    let out = h.send("DATA\r\n\r\nx\r\n.\r\n");
    assert_eq!(
        out.matches("250 2.0.0 <alice> Delivered").count(),
        3,
        "{out}"
    );
}

#[test]
fn a_thousand_and_one_recipients_with_the_default_limit() {
    let mut h = Harness::new();
    let mut script = ENVELOPE.to_string();
    for _ in 0..1001 {
        script.push_str("RCPT TO:<bob>\r\n");
    }
    let out = h.send(&script);
    assert_eq!(out.matches("250 2.1.5").count(), 1000);
    assert!(out.ends_with("452 4.5.3 Too many recipients\r\n"), "{out}");
}

#[test]
fn oversized_data_is_read_to_its_end_unbuffered_and_refused_per_recipient() {
    // RFC 1870 §6.3 (552 5.3.4 once the limit is passed); the data is still read to its end so
    // the session stays in step, and one reply per recipient (RFC 2033 §4.2).
    let mut h = Harness::with(|c| c.limits.imap_max_literal = 100);
    assert_eq!(
        h.send("LHLO x\r\nMAIL FROM:<a@b> SIZE=101\r\n")
            .lines()
            .last(),
        Some("552 5.3.4 Message size exceeds fixed maximum message size")
    );
    h.send("MAIL FROM:<a@b>\r\nRCPT TO:<alice>\r\nRCPT TO:<bob>\r\nDATA\r\n");
    for _ in 0..100 {
        assert_eq!(h.send(&format!("{}\r\n", "y".repeat(998))), "");
    }
    // A line with no end at all is not kept either.
    assert_eq!(h.send(&"z".repeat(100_000)), "");
    assert_eq!(
        h.send("\r\n.\r\nNOOP\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n\
         552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 OK\r\n"
    );
    assert!(h.messages("alice", "INBOX").is_empty());
}

#[test]
fn oversized_bdat_chunk_is_refused_and_later_chunks_are_out_of_sequence() {
    // RFC 3030 §2: after an error reply to a chunk the transaction has failed.
    let mut h = Harness::with(|c| c.limits.imap_max_literal = 10);
    h.send(&format!("{ENVELOPE}RCPT TO:<alice>\r\n"));
    assert_eq!(
        h.send(&format!("BDAT 20\r\n{}", "q".repeat(20))),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(h.send("BDAT 2 LAST\r\nab"), "503 5.5.1 MAIL first\r\n");
    assert!(h.messages("alice", "INBOX").is_empty());
}

#[test]
fn a_close_before_the_final_dot_stores_nothing() {
    let mut h = Harness::new();
    h.send(&format!(
        "{ENVELOPE}RCPT TO:<alice>\r\nDATA\r\nSubject: cut\r\n\r\nhalf"
    ));
    let now = h.now;
    h.session.handle_input(Input::PeerClosed { now }).unwrap();
    h.drain();
    assert!(h.closed);
    assert!(h.messages("alice", "INBOX").is_empty());
}

/// A store that fails every APPEND to one account as a passing condition.
struct Flaky(MemStore);

impl Store for Flaky {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        match &op {
            StorageOp::Append { account, .. } if account == "bob" => {
                Err(StorageError::Unavailable("busy".into()))
            }
            _ => self.0.execute(op),
        }
    }

    fn take_changes(&mut self) -> Vec<crate::store::Changed> {
        self.0.take_changes()
    }
}

#[test]
fn a_temporary_storage_failure_is_451_for_that_recipient_only() {
    // RFC 2033 §4.2: each recipient's reply stands alone; the MTA retries only bob.
    let mut h = Harness::new();
    let mut store = Flaky(MemStore::new());
    let now = h.now;
    let data = format!("{ENVELOPE}RCPT TO:<bob>\r\nRCPT TO:<alice>\r\nDATA\r\n\r\nx\r\n.\r\n");
    h.session
        .handle_input(Input::Bytes {
            now,
            data: data.as_bytes(),
        })
        .unwrap();
    let mut wire = Vec::new();
    pump(
        &mut h.session,
        &mut store,
        &mut h.directory,
        now,
        &mut |b| wire.extend_from_slice(b),
    )
    .unwrap();
    let wire = String::from_utf8(wire).unwrap();
    assert!(
        wire.ends_with(
            "451 4.3.0 <bob> Temporary failure, try again later\r\n\
             250 2.0.0 <alice> Delivered\r\n"
        ),
        "{wire}"
    );
}

/// A directory that cannot answer.
struct Down;

impl Directory for Down {
    fn answer(&mut self, _op: DirectoryOp) -> DirectoryResult {
        Err(crate::DirectoryError::Unavailable("down".into()))
    }
}

#[test]
fn a_directory_that_cannot_answer_gives_451_for_the_recipient() {
    let mut h = Harness::new();
    let now = h.now;
    let data = format!("{ENVELOPE}RCPT TO:<alice>\r\n");
    h.session
        .handle_input(Input::Bytes {
            now,
            data: data.as_bytes(),
        })
        .unwrap();
    let mut wire = Vec::new();
    pump(&mut h.session, &mut h.store, &mut Down, now, &mut |b| {
        wire.extend_from_slice(b)
    })
    .unwrap();
    assert!(String::from_utf8(wire)
        .unwrap()
        .ends_with("451 4.3.0 <alice> Temporary failure, try again later\r\n"));
}

#[test]
fn inactivity_and_shutdown_say_421() {
    let mut h = Harness::new();
    let later = h.now + Duration::from_secs(5 * 60);
    h.session
        .handle_input(Input::Timeout { now: later })
        .unwrap();
    assert_eq!(
        h.drain(),
        "421 4.4.2 mx.test Timeout waiting for the client\r\n"
    );
    assert!(h.closed);

    let mut h = Harness::new();
    let now = h.now;
    h.session.handle_input(Input::Shutdown { now }).unwrap();
    assert_eq!(h.drain(), "421 4.3.2 mx.test Server shutting down\r\n");
    assert!(h.closed);
}

#[test]
fn garbage_is_bounded_by_the_error_count() {
    let mut h = Harness::new();
    let out = h.send(&"xyzzy\r\n".repeat(30));
    assert_eq!(out.matches("500 5.5.2").count(), 20, "{out}");
    assert!(out.ends_with("421 4.7.0 Too many errors, closing the connection\r\n"));
    assert!(h.closed);
}

/// RFC 5321 §4.1.1.4: only CRLF "." CRLF ends the data. A dot between bare line feeds is
/// content, so a message cannot end early and smuggle a second transaction in after it.
#[test]
fn a_dot_between_bare_line_feeds_does_not_end_the_message() {
    let mut h = Harness::new();
    h.send(&format!("{ENVELOPE}RCPT TO:<alice>\r\n"));
    let out = h.send(
        "DATA\r\nA: b\r\n\r\none\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<bob>\r\nDATA\r\nforged\r\n.\n\r\n.\r\n",
    );
    assert_eq!(out.matches("Delivered").count(), 1, "{out}");
    assert!(!out.contains("Sender OK"), "{out}");
    assert_eq!(
        h.messages("alice", "INBOX"),
        ["Return-Path: <sender@remote.test>\r\nDelivered-To: alice\r\nA: b\r\n\r\none\r\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<bob>\r\nDATA\r\nforged\r\n.\r\n\r\n"]
    );
    assert!(h.messages("bob", "INBOX").is_empty());
}

/// An account whose name holds the delimiter (`team+ops`) is found by the whole address
/// first; only when no account has that name is the part after `+` a folder.
#[test]
fn an_account_named_with_a_plus_is_found_whole() {
    let mut h = Harness::new();
    h.directory.add_user("team+ops", "x");
    let out = h.send(&format!(
        "{ENVELOPE}RCPT TO:<team+ops@example.org>\r\nRCPT TO:<alice+nowhere@example.org>\r\n\
         RCPT TO:<carol+x@example.org>\r\nDATA\r\n\r\nx\r\n.\r\n"
    ));
    assert!(out.contains("250 2.1.5 <team+ops@example.org>"), "{out}");
    assert!(out.contains("550 5.1.1 <carol+x@example.org>"), "{out}");
    assert_eq!(h.messages("team+ops", "INBOX").len(), 1);
    assert_eq!(h.messages("alice", "INBOX").len(), 1);
}
