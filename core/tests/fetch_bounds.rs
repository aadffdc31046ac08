//! A FETCH holds bounded output however many attributes its command line names: repeats are
//! answered once, and distinct attributes (thousands of partial ranges fit in a 64 KiB line)
//! are written at most ~1 MiB at a time, the rest waiting for the next storage reply, which a
//! driver feeds back only once it has sent everything before the request. So what one input
//! makes the session produce is what a connection whose client stops reading holds; these tests
//! measure that for each input and check the octets on the wire are still right.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::Bytes;
use tern_core::directory::{Directory, MemDirectory};
use tern_core::imap::response::{Data, FetchItem, Response};
use tern_core::imap::response_decode::parse_response;
use tern_core::store::{BodyStream, NewMessage};
use tern_core::{
    Input, MemStore, Output, Protocol, Session, SessionConfig, StorageError, StorageOp,
    StorageReply, StorageResult, Store, Transport,
};

/// The session's limit on FETCH output written before it waits (`HELD_OUTPUT`).
const HELD: usize = 1024 * 1024;
/// What one queued body stream holds besides its prefix.
const STREAM: usize = std::mem::size_of::<Output>() + std::mem::size_of::<BodyStream>();
/// The longest command line a session reads.
const LINE: usize = 64 * 1024;

/// What the session produced in reply to each input: the most it held at once.
struct Run {
    session: Session,
    store: MemStore,
    directory: MemDirectory,
    now: Instant,
    wire: Vec<u8>,
    /// Octets plus queued streams (at [`STREAM`] each) produced by the input that produced
    /// the most.
    most_held: usize,
    /// Inputs fed during the last command.
    steps: usize,
    /// Replaces storage's reply to the request of this number (counted from 1 within a
    /// command), to play a store that fails or lost messages while a FETCH was paused.
    tamper: Option<(usize, Tamper)>,
}

/// A change made to a storage reply.
type Tamper = fn(StorageResult) -> StorageResult;

impl Run {
    fn new(messages: &[Vec<u8>], stream_over: Option<usize>) -> Run {
        let mut store = MemStore::new();
        if let Some(n) = stream_over {
            store.stream_bodies_over(n);
        }
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "wonderland");
        for data in messages {
            store
                .execute(StorageOp::Append {
                    account: "alice".into(),
                    name: "INBOX".into(),
                    messages: vec![NewMessage {
                        flags: vec![],
                        internal_date: None,
                        data: Bytes::from(data.clone()),
                    }],
                })
                .unwrap();
        }
        let mut config = SessionConfig::new(Protocol::Imap, Transport::Plaintext);
        config.plaintext_auth_without_tls = true;
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut run = Run {
            session: Session::new(config, now),
            store,
            directory,
            now,
            wire: Vec::new(),
            most_held: 0,
            steps: 0,
            tamper: None,
        };
        run.drain();
        run.command("a LOGIN alice wonderland");
        run.command("s SELECT INBOX");
        run
    }

    /// Sends one command line and runs it to its end; returns what the client received.
    fn command(&mut self, line: &str) -> Vec<u8> {
        assert!(line.len() + 2 <= LINE, "{} octets", line.len());
        self.wire.clear();
        self.most_held = 0;
        self.steps = 0;
        let data = format!("{line}\r\n");
        self.session
            .handle_input(Input::Bytes {
                now: self.now,
                data: data.as_bytes(),
            })
            .unwrap();
        self.drain();
        std::mem::take(&mut self.wire)
    }

    /// Carries out outputs until the session waits for input, measuring what each input made
    /// it produce (everything it queued before its next request).
    fn drain(&mut self) {
        let mut held = 0;
        loop {
            match self.session.poll_output() {
                Output::Transmit(b) => {
                    held += b.len();
                    self.wire.extend_from_slice(&b);
                }
                Output::TransmitBody(stream) => {
                    held += STREAM;
                    stream
                        .write_all(64 * 1024, &mut |b| self.wire.extend_from_slice(b))
                        .unwrap();
                }
                Output::Storage(req) => {
                    self.most_held = self.most_held.max(held);
                    held = 0;
                    self.steps += 1;
                    let mut reply = self.store.execute(req.op);
                    if let Some((n, change)) = self.tamper {
                        if n == self.steps {
                            reply = change(reply);
                        }
                    }
                    self.session
                        .handle_input(Input::Storage {
                            now: self.now,
                            id: req.id,
                            reply,
                        })
                        .unwrap();
                }
                Output::Directory(req) => {
                    let reply = self.directory.answer(req.op);
                    self.session
                        .handle_input(Input::Directory {
                            now: self.now,
                            id: req.id,
                            reply,
                        })
                        .unwrap();
                }
                Output::Timeout(_) | Output::Close => break,
                _ => {}
            }
        }
        self.most_held = self.most_held.max(held);
    }
}

/// Every response in `wire`: the FETCH responses' items by message number, and the last line.
fn responses(wire: &[u8]) -> (Vec<(u32, Vec<FetchItem>)>, Response) {
    let mut fetches = Vec::new();
    let mut at = 0;
    loop {
        let (response, len) = parse_response(&wire[at..]).unwrap();
        at += len;
        match response {
            Response::Data(Data::Fetch { seq, items }) => fetches.push((seq, items)),
            other if at == wire.len() => return (fetches, other),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn ends_ok(last: &Response) -> bool {
    format!("{last:?}").contains("Ok")
}

/// Standard base64 in 76-character lines.
fn base64(data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::new();
    for line in text.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A message of a text part of `text` octets and a base64 part that decodes to `binary`.
fn message(n: usize, text: usize, binary: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "Subject: message {n}\r\nFrom: a@example.org\r\nX-One: 1\r\nX-Two: 2\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    for i in 0..text / 64 {
        m.extend_from_slice(format!("{i:>61}.\r\n").as_bytes());
    }
    m.extend_from_slice(
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    m.extend_from_slice(&base64(binary));
    m.extend_from_slice(b"--b--\r\n");
    m
}

fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// `FETCH 1:8 (` and as many of `item(k)` as fit in a command line; returns it and the count.
fn fill_line(prefix: &str, item: &dyn Fn(usize) -> String) -> (String, usize) {
    let mut line = format!("{prefix} (");
    let mut k = 0;
    loop {
        let next = item(k);
        if line.len() + next.len() + 3 > LINE {
            break;
        }
        if k > 0 {
            line.push(' ');
        }
        line.push_str(&next);
        k += 1;
    }
    line.push(')');
    (line, k)
}

/// Thousands of repeats of one attribute are answered once per message (RFC 9051 §6.4.5: data
/// a client already has "can safely ignore"; §7.5.2 names BODY[1] and BODY.PEEK[1] alike).
#[test]
fn repeated_attributes_are_answered_once() {
    let part = binary(6000);
    let messages: Vec<Vec<u8>> = (0..8).map(|n| message(n, 4096, &part)).collect();
    let mut run = Run::new(&messages, None);
    let (line, repeats) = fill_line("f FETCH 1:8", &|k| {
        [
            "BINARY.PEEK[2]",
            "BODY.PEEK[1]",
            "BODY[1]",
            "BINARY.SIZE[2]",
        ][k % 4]
            .to_string()
    });
    assert!(repeats > 3000, "{repeats}");
    let wire = run.command(&line);
    let (fetches, last) = responses(&wire);
    assert!(ends_ok(&last), "{last:?}");
    assert_eq!(fetches.len(), 8);
    for (_, items) in &fetches {
        // BINARY[2], BODY[1], BINARY.SIZE[2], and the FLAGS BODY[1] set.
        assert_eq!(items.len(), 4);
        assert!(items
            .iter()
            .any(|i| matches!(i, FetchItem::Binary { data: Some(d), .. } if d[..] == part[..])));
        assert!(items
            .iter()
            .any(|i| matches!(i, FetchItem::BinarySize { size: 6000, .. })));
    }
    // Eight messages of about 12 KiB: nothing near the limit.
    assert!(wire.len() < 8 * 16 * 1024, "{}", wire.len());
}

/// Distinct partial ranges of whole bodies: each message's response is ~5 MiB, written at
/// most ~1 MiB (plus one item) per input, and every range holds the right octets.
fn distinct_ranges_hold_bounded_output(stream_over: Option<usize>) {
    let messages: Vec<Vec<u8>> = (0..8)
        .map(|n| message(n, 60 * 1024, &binary(30 * 1024)))
        .collect();
    let mut run = Run::new(&messages, stream_over);
    let range = |k: usize| (k * 37, 2048);
    let (line, count) = fill_line("f FETCH 1:8", &|k| {
        let (origin, length) = range(k);
        format!("BODY.PEEK[]<{origin}.{length}>")
    });
    assert!(count > 2000, "{count}");
    let wire = run.command(&line);
    assert!(
        run.most_held <= HELD + 4096,
        "held {} octets at once ({} inputs)",
        run.most_held,
        run.steps
    );
    // The output is many times the bound: it went out in many steps (streamed octets are not
    // held, but their queued streams are).
    assert!(wire.len() > 8 * count * 2000, "{}", wire.len());
    let held_in_all = match stream_over {
        None => wire.len(),
        Some(_) => 8 * count * STREAM,
    };
    assert!(held_in_all > 2 * HELD);
    assert!(run.steps > held_in_all / (2 * HELD), "{} steps", run.steps);
    let (fetches, last) = responses(&wire);
    assert!(ends_ok(&last), "{last:?}");
    assert_eq!(fetches.len(), 8);
    for (seq, items) in fetches {
        let body = &messages[seq as usize - 1];
        assert_eq!(items.len(), count);
        for (k, item) in items.iter().enumerate() {
            let (origin, length) = range(k);
            let want = &body[origin..(origin + length).min(body.len())];
            match item {
                FetchItem::BodySection {
                    origin: Some(o),
                    data: Some(d),
                    ..
                } => {
                    assert_eq!(*o as usize, origin);
                    assert_eq!(&d[..], want, "message {seq} range {k}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn distinct_ranges_of_inline_bodies_hold_bounded_output() {
    distinct_ranges_hold_bounded_output(None);
}

#[test]
fn distinct_ranges_of_streamed_bodies_hold_bounded_output() {
    distinct_ranges_hold_bounded_output(Some(0));
}

/// Decoded parts, field lists and whole bodies at once: each item is at most a whole body
/// (~100 KiB here), and the bound holds to within one such item.
#[test]
fn mixed_items_hold_bounded_output() {
    let part = binary(30 * 1024);
    let messages: Vec<Vec<u8>> = (0..8).map(|n| message(n, 60 * 1024, &part)).collect();
    let largest = messages.iter().map(Vec::len).max().unwrap();
    let mut run = Run::new(&messages, None);
    let (line, count) = fill_line("f FETCH 1:8", &|k| match k % 4 {
        0 => format!("BINARY.PEEK[2]<{k}.4096>"),
        1 => format!("BODY.PEEK[HEADER.FIELDS (SUBJECT X-{k})]"),
        2 => format!("BODY.PEEK[]<{k}.100000>"),
        _ => format!("BINARY.SIZE[2] BODY.PEEK[1]<{k}.30000>"),
    });
    assert!(count > 1000, "{count}");
    let wire = run.command(&line);
    assert!(
        run.most_held <= HELD + largest + 1024,
        "held {} octets at once",
        run.most_held
    );
    let (fetches, last) = responses(&wire);
    assert!(ends_ok(&last), "{last:?}");
    assert_eq!(fetches.len(), 8);
    for (seq, items) in fetches {
        // BINARY.SIZE[2] is asked for a quarter of the time and answered once.
        assert_eq!(items.len(), count + 1);
        for item in items {
            if let FetchItem::Binary {
                origin: Some(o),
                data: Some(d),
                ..
            } = item
            {
                let o = o as usize;
                assert_eq!(
                    &d[..],
                    &part[o..(o + 4096).min(part.len())],
                    "message {seq}"
                );
            }
        }
    }
}

/// BINARY.SIZE of encoded parts larger than the chunks it counts in (64 KiB), held in memory
/// or streamed: the size BINARY's literal has, without the part decoded to count it.
#[test]
fn binary_size_of_large_encoded_parts_is_binary_length() {
    let mut qp = b"Subject: qp\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".to_vec();
    for i in 0..5000 {
        qp.extend_from_slice(format!("line {i} =C3=A9 caf=\r\n=E9 tail  \r\n").as_bytes());
    }
    let messages = vec![message(0, 1024, &binary(200_000)), qp];
    for stream_over in [None, Some(0)] {
        let mut run = Run::new(&messages, stream_over);
        for (seq, part) in [(1, 2), (2, 1)] {
            let wire = run.command(&format!(
                "f FETCH {seq} (BINARY.SIZE[{part}] BINARY.PEEK[{part}])"
            ));
            let (fetches, last) = responses(&wire);
            assert!(ends_ok(&last), "{last:?}");
            let [(_, items)] = &fetches[..] else {
                panic!("{fetches:?}")
            };
            let size = items.iter().find_map(|i| match i {
                FetchItem::BinarySize { size, .. } => Some(*size),
                _ => None,
            });
            let data = items.iter().find_map(|i| match i {
                FetchItem::Binary { data: Some(d), .. } => Some(d.len() as u64),
                _ => None,
            });
            assert!(size.is_some_and(|s| s > 100_000), "{size:?}");
            assert_eq!(
                size, data,
                "message {seq} part {part}, streamed {stream_over:?}"
            );
        }
    }
}

/// A response left open when a FETCH paused in the middle of a message is closed before
/// anything else is said when the next storage reply fails or no longer has the message: the
/// client gets well-formed responses, then the tagged NO.
#[test]
fn a_response_left_open_is_closed_when_storage_fails_or_lost_the_message() {
    let messages = vec![message(0, 60 * 1024, &binary(30 * 1024))];
    let (line, count) = fill_line("f FETCH 1", &|k| format!("BODY.PEEK[]<{k}.2048>"));
    let failed: Tamper = |_| Err(StorageError::Unavailable("gone".into()));
    let lost: Tamper = |_| Ok(StorageReply::Fetched(Vec::new()));
    for (tamper, code) in [(failed, "Unavailable"), (lost, "ExpungeIssued")] {
        let mut run = Run::new(&messages, None);
        // The first reply starts the response; the second one is changed.
        run.tamper = Some((2, tamper));
        let wire = run.command(&line);
        let (fetches, last) = responses(&wire);
        let [(1, items)] = &fetches[..] else {
            panic!("{fetches:?}")
        };
        // Cut short: some of the ranges, each right.
        assert!(!items.is_empty() && items.len() < count, "{}", items.len());
        let last = format!("{last:?}");
        assert!(last.contains("No") && last.contains(code), "{last}");
    }
}
