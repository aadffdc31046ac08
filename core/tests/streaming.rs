//! Large bodies are streamed (issue 19 item 2): a store that hands out a body as a source gets
//! an `Output::TransmitBody` for it instead of the octets in the outbox, and the octets on the
//! wire are exactly those of the same response with the body in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::Bytes;
use tern_core::directory::{Directory, MemDirectory};
use tern_core::store::NewMessage;
use tern_core::{
    Input, MemStore, Output, Protocol, Session, SessionConfig, StorageOp, Store, Transport,
};

const MIXED: &str = "Subject: streamed\r\nFrom: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n.preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\n.dotted line\r\n..two dots\r\nplain\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--b--\r\n";
/// No final line end, and a dot right after the header.
const BARE: &str = "Subject: bare\r\n\r\n.first\r\nsecond\r\n.third";

/// Runs `script` a line at a time against a store holding [`MIXED`] and [`BARE`]; returns the
/// wire and how many streamed outputs the session emitted.
fn run(protocol: Protocol, stream_over: Option<usize>, script: &[&str]) -> (String, usize) {
    let mut store = MemStore::new();
    let mut directory = MemDirectory::new();
    directory.add_user("alice", "wonderland");
    if let Some(n) = stream_over {
        store.stream_bodies_over(n);
    }
    for data in [MIXED, BARE] {
        store
            .execute(StorageOp::Append {
                account: "alice".into(),
                name: "INBOX".into(),
                messages: vec![NewMessage {
                    flags: vec![],
                    internal_date: None,
                    data: Bytes::from(data),
                }],
            })
            .unwrap();
    }
    let mut config = SessionConfig::new(protocol, Transport::Plaintext);
    config.plaintext_auth_without_tls = true;
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut session = Session::new(config, now);
    let mut wire = Vec::new();
    let mut streams = 0;
    let mut lines = script.iter();
    loop {
        match session.poll_output() {
            Output::Transmit(b) => wire.extend_from_slice(&b),
            Output::TransmitBody(stream) => {
                streams += 1;
                // Small, odd reads: every transform must carry its state across them.
                stream
                    .write_all(7, &mut |b| wire.extend_from_slice(b))
                    .unwrap();
            }
            Output::Directory(req) => {
                let reply = directory.answer(req.op);
                session
                    .handle_input(Input::Directory {
                        now,
                        id: req.id,
                        reply,
                    })
                    .unwrap();
            }
            Output::Storage(req) => {
                let reply = store.execute(req.op);
                session
                    .handle_input(Input::Storage {
                        now,
                        id: req.id,
                        reply,
                    })
                    .unwrap();
            }
            Output::Timeout(_) => match lines.next() {
                Some(line) => session
                    .handle_input(Input::Bytes {
                        now,
                        data: format!("{line}\r\n").as_bytes(),
                    })
                    .unwrap(),
                None => break,
            },
            Output::Close => break,
            _ => {}
        }
    }
    (String::from_utf8(wire).unwrap(), streams)
}

/// Every section form a client may ask for, in memory and streamed, gives the same octets.
#[test]
fn streamed_fetch_sends_what_inline_fetch_sends() {
    let script = [
        "a LOGIN alice wonderland",
        "b SELECT INBOX",
        "c FETCH 1:* (BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[HEADER] BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[HEADER.FIELDS.NOT (Subject)] BODY.PEEK[]<5.20> BODY.PEEK[1]<3.4> BODY.PEEK[]<900.5> RFC822.HEADER RFC822.SIZE BINARY.PEEK[2] BINARY.PEEK[2]<2.3> BINARY.SIZE[1] BINARY.SIZE[2] BODY.PEEK[9] BINARY.PEEK[9])",
        "d FETCH 1:2 (RFC822 RFC822.TEXT)",
        "e LOGOUT",
    ];
    let (inline, none) = run(Protocol::Imap, None, &script);
    let (streamed, streams) = run(Protocol::Imap, Some(0), &script);
    assert_eq!(none, 0);
    assert!(streams >= 20, "{streams} streamed outputs");
    assert_eq!(streamed, inline);
    assert!(inline.contains("BODY[1] {31}\r\n.dotted line\r\n..two dots\r\nplain"));
    assert!(inline.contains("d OK"));
}

/// BINARY of an unencoded part streams as literal8: its octets are not at hand to check for
/// NUL, and `~{n}` is valid for any octets (RFC 3516 §4.2).
#[test]
fn streamed_binary_goes_as_literal8() {
    let script = [
        "a LOGIN alice wonderland",
        "b SELECT INBOX",
        "c FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[])",
        "e LOGOUT",
    ];
    let (inline, _) = run(Protocol::Imap, None, &script);
    let (streamed, streams) = run(Protocol::Imap, Some(0), &script);
    assert_eq!(streams, 2);
    assert!(inline.contains("BINARY[1] {31}\r\n"));
    assert!(streamed.contains("BINARY[1] ~{31}\r\n"));
    assert_eq!(streamed.replace("~{", "{"), inline);
}

/// POP3 RETR and TOP: byte-stuffed, the last line ended, the terminator added, the same
/// whether the message is in memory or streamed in 7-octet reads.
#[test]
fn streamed_retr_and_top_send_what_inline_ones_send() {
    let script = [
        "USER alice",
        "PASS wonderland",
        "RETR 1",
        "RETR 2",
        "TOP 1 0",
        "TOP 1 3",
        "TOP 2 1",
        "TOP 2 10",
        "QUIT",
    ];
    let (inline, none) = run(Protocol::Pop3, None, &script);
    let (streamed, streams) = run(Protocol::Pop3, Some(0), &script);
    assert_eq!(none, 0);
    assert_eq!(streams, 6);
    assert_eq!(streamed, inline);
    assert!(inline.contains("\r\n\r\n..first\r\nsecond\r\n..third\r\n.\r\n"));
    assert!(inline.contains("+OK\r\nSubject: bare\r\n\r\n..first\r\n.\r\n"));
}
