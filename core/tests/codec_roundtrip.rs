//! Round-trip properties of the IMAP codec, through the public API only:
//!
//! - `decode::command(encode_command(c)) == c` for structurally generated commands reaching
//!   every `Command` variant, with both literal forms and with and without UTF-8;
//! - `parse_response(encode::response(r)) == r` for generated responses reaching every
//!   `Response`, `Data`, `Code` and `FetchItem` variant;
//! - arbitrary bytes, and mutations of valid commands, never make either parser panic;
//! - a command with literals, cut at any octet boundary or fed an octet at a time, is
//!   answered by a session exactly as when it arrives whole.
//!
//! Generators only build values the grammar can express (a `MIME` section has a part number,
//! an `AND` is never empty, numbers stay in their ABNF ranges...); that is the contract the
//! decoder's canonical forms rest on. Each property runs [`DEFAULT_TESTS`] cases; set
//! `QUICKCHECK_TESTS` for a longer run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;

use bytes::{Bytes, BytesMut};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use tern_core::imap::command::{Command, CommandLine, NotifySet, SearchProgram, Tag};
use tern_core::imap::decode;
use tern_core::imap::encode::{self, EncodeOptions};
use tern_core::imap::encode_command::{encode_command, CommandEncodeOptions};
use tern_core::imap::response::{
    Code, Condition, Data, ESearchResult, FetchItem, ListItem, MetadataCode, Progress, Response,
    StatusResponse, StatusValue, ThreadNode,
};
use tern_core::imap::response_decode::parse_response;
use tern_core::imap::types::*;
use tern_core::mail::date::{Date, DateTime};
use tern_core::mail::flags::{Flag, StoreMode};
use tern_core::mail::section::{Section, SectionText};
use tern_core::mail::structure::{
    Address, BodyExtension, BodyFields, BodyStructure, Disposition, Envelope, NString,
};
use tern_core::secret::Secret;

/// Keeps the whole file well under five seconds in a debug build.
const DEFAULT_TESTS: u64 = 400;

fn checker() -> QuickCheck {
    sized_checker(12)
}

/// `size` bounds generated collection lengths (and so the raw byte strings).
fn sized_checker(size: usize) -> QuickCheck {
    let qc = QuickCheck::new().rng(Gen::new(size));
    if std::env::var_os("QUICKCHECK_TESTS").is_some() {
        qc
    } else {
        qc.tests(DEFAULT_TESTS)
    }
}

// ---------------------------------------------------------------- small generators

fn below(g: &mut Gen, n: usize) -> usize {
    usize::arbitrary(g) % n.max(1)
}

fn chance(g: &mut Gen, one_in: usize) -> bool {
    below(g, one_in) == 0
}

fn pick<T: Clone>(g: &mut Gen, items: &[T]) -> T {
    g.choose(items).unwrap().clone()
}

fn vec_of<T>(g: &mut Gen, min: usize, max: usize, mut f: impl FnMut(&mut Gen) -> T) -> Vec<T> {
    let n = min + below(g, max - min + 1);
    (0..n).map(|_| f(g)).collect()
}

fn maybe<T>(g: &mut Gen, f: impl FnOnce(&mut Gen) -> T) -> Option<T> {
    bool::arbitrary(g).then(|| f(g))
}

fn u64_63(g: &mut Gen) -> u64 {
    match below(g, 4) {
        0 => 0,
        1 => i64::MAX as u64,
        _ => u64::arbitrary(g) >> 1,
    }
}

fn nz32(g: &mut Gen) -> u32 {
    match below(g, 4) {
        0 => u32::MAX,
        _ => u32::arbitrary(g).max(1),
    }
}

fn from_chars(g: &mut Gen, chars: &[u8], min: usize, max: usize) -> Bytes {
    Bytes::from(vec_of(g, min, max, |g| pick(g, chars)))
}

const ATOM_CHARS: &[u8] = b"abcXYZ09-_.$&+:[!~";
const ALNUM: &[u8] = b"abcdefXYZ0189";

fn atom(g: &mut Gen) -> Bytes {
    from_chars(g, ATOM_CHARS, 1, 8)
}

/// An atom that is no keyword of the grammar (`X` starts no command, code or event name).
fn x_atom(g: &mut Gen) -> Bytes {
    let mut v = b"X".to_vec();
    v.extend(from_chars(g, ALNUM, 0, 6));
    Bytes::from(v)
}

fn object_id(g: &mut Gen) -> Bytes {
    from_chars(g, b"aZ09_-", 1, 12)
}

/// Any string a client could send (everything but NUL, which only literal8 carries): atoms,
/// specials that force quoting, line ends that force literals, UTF-8 and invalid 8-bit.
fn string(g: &mut Gen) -> Bytes {
    let pieces: &[&[u8]] = &[
        b"a",
        b"Z",
        b"0",
        b" ",
        b"\"",
        b"\\",
        b"\r",
        b"\n",
        b"%",
        b"*",
        b"]",
        b"(",
        b")",
        b"{",
        b"}",
        b"NIL",
        b"INBOX",
        "é".as_bytes(),
        "€".as_bytes(),
        b"\xff",
        b"~",
        b"+",
    ];
    let mut v = Vec::new();
    for _ in 0..below(g, 6) {
        v.extend_from_slice(pick(g, pieces));
    }
    Bytes::from(v)
}

/// Any octets, NUL included.
fn octets(g: &mut Gen) -> Bytes {
    let mut v = string(g).to_vec();
    if chance(g, 3) {
        v.insert(below(g, v.len() + 1), 0);
    }
    Bytes::from(v)
}

fn nstring(g: &mut Gen) -> NString {
    maybe(g, string)
}

fn tag(g: &mut Gen) -> Tag {
    Tag::new(from_chars(g, b"aZ09.-][", 1, 6)).unwrap()
}

fn mailbox(g: &mut Gen) -> MailboxArg {
    MailboxArg(string(g))
}

fn seq_no(g: &mut Gen) -> SeqNo {
    if chance(g, 5) {
        SeqNo::Star
    } else {
        SeqNo::Value(NonZeroU32::new(nz32(g)).unwrap())
    }
}

fn partial_range(g: &mut Gen) -> PartialRange {
    let nz = |g: &mut Gen| NonZeroU32::new(nz32(g)).unwrap();
    let (a, b) = (nz(g), nz(g));
    if bool::arbitrary(g) {
        PartialRange::First(a, b)
    } else {
        PartialRange::Last(a, b)
    }
}

fn ranges(g: &mut Gen) -> SequenceSet {
    SequenceSet::Ranges(vec_of(g, 1, 4, |g| {
        let from = seq_no(g);
        let to = if bool::arbitrary(g) { from } else { seq_no(g) };
        SeqRange { from, to }
    }))
}

fn append_message(g: &mut Gen) -> AppendMessage {
    let binary = bool::arbitrary(g);
    AppendMessage {
        flags: vec_of(g, 0, 3, flag),
        date: maybe(g, date_time),
        data: if binary { octets(g) } else { string(g) },
        binary,
    }
}

fn sequence_set(g: &mut Gen) -> SequenceSet {
    if chance(g, 6) {
        SequenceSet::Saved
    } else {
        ranges(g)
    }
}

fn flag(g: &mut Gen) -> Flag {
    match below(g, 8) {
        0 => Flag::Answered,
        1 => Flag::Flagged,
        2 => Flag::Deleted,
        3 => Flag::Seen,
        4 => Flag::Draft,
        5 => Flag::Recent,
        6 => Flag::Keyword(atom(g)),
        _ => Flag::Extension(x_atom(g)),
    }
}

fn date(g: &mut Gen) -> Date {
    let year = u16::arbitrary(g) % 10_000;
    let month = 1 + (u8::arbitrary(g) % 12);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 31,
    };
    Date {
        year,
        month,
        day: 1 + (u8::arbitrary(g) % days),
    }
}

fn date_time(g: &mut Gen) -> DateTime {
    DateTime {
        date: date(g),
        hour: u8::arbitrary(g) % 24,
        minute: u8::arbitrary(g) % 60,
        second: u8::arbitrary(g) % 61,
        zone_minutes: (i16::arbitrary(g) % 1440),
    }
}

fn status_item(g: &mut Gen) -> StatusItem {
    use StatusItem::*;
    pick(
        g,
        &[
            Messages,
            Recent,
            UidNext,
            UidValidity,
            Unseen,
            Deleted,
            DeletedStorage,
            Size,
            HighestModSeq,
            AppendLimit,
            MailboxId,
        ],
    )
}

fn part(g: &mut Gen) -> Vec<u32> {
    vec_of(g, 0, 3, nz32)
}

fn section(g: &mut Gen) -> Section {
    let part = part(g);
    let text = match below(g, 6) {
        0 => None,
        1 => Some(SectionText::Header),
        2 => Some(SectionText::HeaderFields(vec_of(g, 1, 3, string))),
        3 => Some(SectionText::HeaderFieldsNot(vec_of(g, 1, 3, string))),
        4 => Some(SectionText::Text),
        _ if part.is_empty() => None,
        _ => Some(SectionText::Mime),
    };
    Section { part, text }
}

fn partial(g: &mut Gen) -> Option<Partial> {
    maybe(g, |g| Partial {
        origin: u32::arbitrary(g),
        length: NonZeroU32::new(nz32(g)).unwrap(),
    })
}

fn fetch_attr(g: &mut Gen) -> FetchAttr {
    use FetchAttr::*;
    match below(g, 20) {
        0 => Envelope,
        1 => Flags,
        2 => InternalDate,
        3 => Rfc822,
        4 => Rfc822Header,
        5 => Rfc822Size,
        6 => Rfc822Text,
        7 => Body,
        8 => BodyStructure,
        9 => Uid,
        10 | 11 => BodySection {
            peek: bool::arbitrary(g),
            section: section(g),
            partial: partial(g),
        },
        12 => Binary {
            peek: bool::arbitrary(g),
            part: part(g),
            partial: partial(g),
        },
        13 => BinarySize { part: part(g) },
        14 => ModSeq,
        15 => EmailId,
        16 => ThreadId,
        17 => SaveDate,
        _ => Preview {
            lazy: bool::arbitrary(g),
        },
    }
}

fn search_key(g: &mut Gen, depth: usize) -> SearchKey {
    use SearchKey::*;
    let leaf = depth >= 3;
    match below(g, if leaf { 45 } else { 49 }) {
        0 => All,
        1 => Answered,
        2 => Bcc(string(g)),
        3 => Before(date(g)),
        4 => Body(string(g)),
        5 => Cc(string(g)),
        6 => Deleted,
        7 => Draft,
        8 => Flagged,
        9 => From(string(g)),
        10 => Header(string(g), string(g)),
        11 => Keyword(atom(g)),
        12 => Larger(u64_63(g)),
        13 => New,
        14 => Old,
        15 => On(date(g)),
        16 => Recent,
        17 => Seen,
        18 => SentBefore(date(g)),
        19 => SentOn(date(g)),
        20 => SentSince(date(g)),
        21 => Since(date(g)),
        22 => Smaller(u64_63(g)),
        23 => Subject(string(g)),
        24 => Text(string(g)),
        25 => To(string(g)),
        26 => Uid(sequence_set(g)),
        27 => Unanswered,
        28 => Undeleted,
        29 => Undraft,
        30 => Unflagged,
        31 => Unkeyword(atom(g)),
        32 => Unseen,
        33 | 34 => SequenceSet(sequence_set(g)),
        35 => Older(nz32(g)),
        36 => Younger(nz32(g)),
        37 => ModSeq {
            entry: maybe(g, |g| {
                (
                    string(g),
                    pick(g, &[EntryType::Private, EntryType::Shared, EntryType::All]),
                )
            }),
            modseq: u64_63(g),
        },
        38 => EmailId(object_id(g)),
        39 => ThreadId(object_id(g)),
        40 => SavedBefore(date(g)),
        41 => SavedOn(date(g)),
        42 => SavedSince(date(g)),
        43 | 44 => SaveDateSupported,
        45 => Not(Box::new(search_key(g, depth + 1))),
        46 => Or(
            Box::new(search_key(g, depth + 1)),
            Box::new(search_key(g, depth + 1)),
        ),
        _ => And(vec_of(g, 1, 3, |g| search_key(g, depth + 1))),
    }
}

fn program(g: &mut Gen, charset: bool) -> SearchProgram {
    SearchProgram {
        charset: if charset {
            Some(string(g))
        } else {
            maybe(g, string)
        },
        criteria: vec_of(g, 1, 4, |g| search_key(g, 0)),
    }
}

fn search_returns(g: &mut Gen) -> Option<Vec<SearchReturn>> {
    use SearchReturn::*;
    maybe(g, |g| {
        vec_of(g, 0, 3, |g| {
            if chance(g, 6) {
                Partial(partial_range(g))
            } else {
                pick(g, &[Min, Max, All, Count, Save])
            }
        })
    })
}

// ---------------------------------------------------------------- commands

fn notify_filter(g: &mut Gen) -> NotifyFilter {
    match below(g, 8) {
        0 => NotifyFilter::Selected,
        1 => NotifyFilter::SelectedDelayed,
        2 => NotifyFilter::Inboxes,
        3 => NotifyFilter::Personal,
        4 => NotifyFilter::Subscribed,
        5 => NotifyFilter::Subtree(vec_of(g, 1, 3, mailbox)),
        6 => NotifyFilter::SubtreeOne(vec_of(g, 1, 3, mailbox)),
        _ => NotifyFilter::Mailboxes(vec_of(g, 1, 3, mailbox)),
    }
}

fn command(g: &mut Gen) -> Command {
    match below(g, 52) {
        0 => Command::Capability,
        1 => Command::Noop,
        2 => Command::Logout,
        3 => Command::Id(maybe(g, |g| vec_of(g, 0, 3, |g| (string(g), nstring(g))))),
        4 => Command::StartTls,
        5 => Command::Authenticate {
            mechanism: atom(g),
            initial_response: maybe(g, |g| Secret::new(from_chars(g, b"AZaz09+/=", 1, 12))),
        },
        6 => Command::Login {
            username: string(g),
            password: Secret::new(string(g)),
        },
        7 => Command::Enable(vec_of(g, 1, 3, atom)),
        8 | 9 => {
            let mailbox = mailbox(g);
            let params = vec_of(g, 0, 2, |g| {
                if bool::arbitrary(g) {
                    SelectParam::CondStore
                } else {
                    SelectParam::QResync {
                        uid_validity: nz32(g),
                        mod_seq: u64_63(g),
                        known_uids: maybe(g, ranges),
                        seq_match: maybe(g, |g| (ranges(g), ranges(g))),
                    }
                }
            });
            if bool::arbitrary(g) {
                Command::Select { mailbox, params }
            } else {
                Command::Examine { mailbox, params }
            }
        }
        10 => Command::Create {
            mailbox: mailbox(g),
            special_use: vec_of(g, 0, 3, |g| {
                let mut v = b"\\".to_vec();
                v.extend(atom(g));
                Bytes::from(v)
            }),
        },
        11 => Command::Delete {
            mailbox: mailbox(g),
        },
        12 => Command::Rename {
            from: mailbox(g),
            to: mailbox(g),
        },
        13 => Command::Subscribe {
            mailbox: mailbox(g),
        },
        14 => Command::Unsubscribe {
            mailbox: mailbox(g),
        },
        15 => {
            use ListSelect::*;
            let mut select = vec_of(g, 0, 3, |g| {
                pick(g, &[Subscribed, Remote, RecursiveMatch, SpecialUse])
            });
            // RFC 5258 §3: RECURSIVEMATCH needs a base option.
            if select.contains(&RecursiveMatch) && !select.contains(&Subscribed) {
                select.push(Subscribed);
            }
            Command::List {
                select,
                reference: mailbox(g),
                patterns: vec_of(g, 1, 3, |g| ListPattern(string(g))),
                returns: vec_of(g, 0, 3, |g| match below(g, 4) {
                    0 => ListReturn::Subscribed,
                    1 => ListReturn::Children,
                    2 => ListReturn::SpecialUse,
                    _ => ListReturn::Status(vec_of(g, 1, 3, status_item)),
                }),
            }
        }
        16 => Command::Lsub {
            reference: mailbox(g),
            pattern: ListPattern(string(g)),
        },
        17 => Command::Namespace,
        18 => Command::Status {
            mailbox: mailbox(g),
            items: vec_of(g, 1, 4, status_item),
        },
        19 => Command::Append {
            mailbox: mailbox(g),
            messages: vec_of(g, 1, 3, append_message),
        },
        48 => Command::Replace {
            uid: bool::arbitrary(g),
            target: seq_no(g),
            mailbox: mailbox(g),
            message: append_message(g),
        },
        20 => Command::Idle,
        21 => Command::GetQuota { root: string(g) },
        22 => Command::GetQuotaRoot {
            mailbox: mailbox(g),
        },
        23 => Command::SetQuota {
            root: string(g),
            limits: vec_of(g, 0, 3, |g| (atom(g), u64_63(g))),
        },
        24 => Command::GetMetadata {
            options: MetadataOptions {
                max_size: maybe(g, u32::arbitrary),
                depth: maybe(g, |g| {
                    pick(
                        g,
                        &[
                            MetadataDepth::Zero,
                            MetadataDepth::One,
                            MetadataDepth::Infinity,
                        ],
                    )
                }),
            },
            mailbox: mailbox(g),
            entries: vec_of(g, 1, 3, string),
        },
        25 => Command::SetMetadata {
            mailbox: mailbox(g),
            entries: vec_of(g, 1, 3, |g| (string(g), maybe(g, octets))),
        },
        26 => Command::Notify {
            set: maybe(g, |g| NotifySet {
                status: bool::arbitrary(g),
                groups: vec_of(g, 1, 3, |g| NotifyGroup {
                    filter: notify_filter(g),
                    events: vec_of(g, 0, 3, |g| {
                        if bool::arbitrary(g) {
                            NotifyEvent {
                                name: Bytes::from_static(b"MessageNew"),
                                fetch: vec_of(g, 0, 3, fetch_attr),
                            }
                        } else {
                            NotifyEvent {
                                name: x_atom(g),
                                fetch: vec![],
                            }
                        }
                    }),
                }),
            }),
        },
        27 => Command::Compress { mechanism: atom(g) },
        28 => Command::Check,
        29 => Command::Close,
        30 => Command::Unselect,
        31 => Command::Expunge,
        32 => Command::UidExpunge(sequence_set(g)),
        33 | 34 => Command::Search {
            uid: bool::arbitrary(g),
            returns: search_returns(g),
            program: program(g, false),
        },
        35 => {
            use SortKey::*;
            Command::Sort {
                uid: bool::arbitrary(g),
                returns: search_returns(g),
                criteria: vec_of(g, 1, 3, |g| SortCriterion {
                    reverse: bool::arbitrary(g),
                    key: pick(
                        g,
                        &[
                            Arrival,
                            Cc,
                            Date,
                            From,
                            Size,
                            Subject,
                            To,
                            DisplayFrom,
                            DisplayTo,
                        ],
                    ),
                }),
                program: program(g, true),
            }
        }
        36 => Command::Thread {
            uid: bool::arbitrary(g),
            algorithm: match below(g, 3) {
                0 => ThreadAlgorithm::OrderedSubject,
                1 => ThreadAlgorithm::References,
                _ => ThreadAlgorithm::Other(x_atom(g)),
            },
            program: program(g, true),
        },
        37..=40 => Command::Fetch {
            uid: bool::arbitrary(g),
            set: sequence_set(g),
            items: match below(g, 6) {
                0 => FetchItems::All,
                1 => FetchItems::Fast,
                2 => FetchItems::Full,
                _ => FetchItems::Attrs(vec_of(g, 0, 4, fetch_attr)),
            },
            modifiers: FetchModifiers {
                changed_since: maybe(g, u64_63),
                vanished: bool::arbitrary(g),
                partial: maybe(g, partial_range),
            },
        },
        41 | 42 => Command::Store {
            uid: bool::arbitrary(g),
            set: sequence_set(g),
            unchanged_since: maybe(g, u64_63),
            mode: pick(g, &[StoreMode::Replace, StoreMode::Add, StoreMode::Remove]),
            silent: bool::arbitrary(g),
            flags: vec_of(g, 0, 4, flag),
        },
        43 | 44 => Command::Copy {
            uid: bool::arbitrary(g),
            set: sequence_set(g),
            mailbox: mailbox(g),
        },
        47 => Command::Unauthenticate,
        45 | 46 => Command::Move {
            uid: bool::arbitrary(g),
            set: sequence_set(g),
            mailbox: mailbox(g),
        },
        49 => Command::ESearch {
            sources: maybe(g, |g| vec_of(g, 1, 3, notify_filter)),
            returns: search_returns(g),
            program: program(g, false),
        },
        _ => Command::Unknown { name: x_atom(g) },
    }
}

#[derive(Clone, Debug)]
struct ArbCommand(CommandLine, CommandEncodeOptions);

impl Arbitrary for ArbCommand {
    fn arbitrary(g: &mut Gen) -> Self {
        let line = CommandLine {
            tag: tag(g),
            command: command(g),
        };
        let opts = CommandEncodeOptions::new()
            .non_sync_literals(bool::arbitrary(g))
            .utf8(bool::arbitrary(g));
        ArbCommand(line, opts)
    }
}

fn encoded(c: &ArbCommand) -> (Bytes, Vec<usize>) {
    let mut out = BytesMut::new();
    let waits = encode_command(&mut out, &c.0, &c.1);
    (out.freeze(), waits)
}

#[test]
fn decode_inverts_encode_command() {
    fn prop(c: ArbCommand) -> TestResult {
        let (wire, waits) = encoded(&c);
        match decode::command(&wire) {
            Ok(back) if back == c.0 => {}
            other => {
                return TestResult::error(format!(
                    "{:?}\n  wire {:?}\n  got {other:?}",
                    c.0,
                    String::from_utf8_lossy(&wire)
                ))
            }
        }
        // Each wait point follows a synchronising announcement, and only those.
        for &w in &waits {
            let head = wire.get(..w).unwrap();
            if !head.ends_with(b"}\r\n") || head.ends_with(b"+}\r\n") {
                return TestResult::error(format!("bad wait point {w} in {wire:?}"));
            }
        }
        if c.1.non_sync_literals && !waits.is_empty() {
            return TestResult::error("non-synchronising literals need no wait");
        }
        TestResult::passed()
    }
    checker().quickcheck(prop as fn(ArbCommand) -> TestResult);
}

#[test]
fn every_command_variant_is_generated() {
    let mut g = Gen::new(12);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5000 {
        seen.insert(command(&mut g).name());
    }
    // 52 names: `name()` distinguishes UID forms too.
    assert_eq!(seen.len(), 52, "{seen:?}");
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    fn prop(data: Vec<u8>) -> bool {
        let _ = decode::command(&Bytes::from(data.clone()));
        let _ = parse_response(&data);
        true
    }
    sized_checker(300).quickcheck(prop as fn(Vec<u8>) -> bool);
}

#[test]
fn decoding_mutated_commands_never_panics() {
    fn prop(c: ArbCommand, edits: Vec<(usize, u8)>, cut: usize) -> bool {
        let (wire, _) = encoded(&c);
        let mut v = wire.to_vec();
        for (at, b) in edits {
            if !v.is_empty() {
                let at = at % v.len();
                v[at] = b;
            }
        }
        v.truncate(cut % (v.len() + 1) + v.len() / 2);
        let _ = decode::command(&Bytes::from(v));
        true
    }
    checker().quickcheck(prop as fn(ArbCommand, Vec<(usize, u8)>, usize) -> bool);
}

// ---------------------------------------------------------------- literals split anywhere

/// What a logged-in IMAP session answers to `pieces`, each fed as one read.
fn answers(pieces: &[&[u8]]) -> Vec<u8> {
    use tern_core::drive::pump;
    use tern_core::{Input, MemDirectory, MemStore, Protocol, Session, SessionConfig, Transport};
    let mut store = MemStore::new();
    let mut directory = MemDirectory::new();
    directory.add_user("alice", "pw");
    let config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
    #[allow(clippy::disallowed_methods)] // The clock never moves here.
    let now = std::time::Instant::now();
    let mut session = Session::new(config, now);
    let mut out = Vec::new();
    let login: &[u8] = b"l LOGIN alice pw\r\n";
    for (i, piece) in std::iter::once(&login).chain(pieces).enumerate() {
        if i == 1 {
            out.clear();
        }
        if session
            .handle_input(Input::Bytes { now, data: piece })
            .is_err()
        {
            break; // Closed (LOGOUT): a driver stops reading.
        }
        pump(&mut session, &mut store, &mut directory, now, &mut |b| {
            out.extend_from_slice(b)
        })
        .unwrap();
    }
    out
}

/// A command with literals, cut at every octet boundary (and fed an octet at a time), is
/// answered octet for octet as when it arrives whole: the framer's literal handling does not
/// depend on where reads end. A NOOP after it shows the framer is back at a command start.
#[test]
fn literals_split_at_every_boundary_answer_as_whole() {
    fn prop(c: ArbCommand) -> TestResult {
        let (wire, _) = encoded(&c);
        if !wire.windows(3).any(|w| w == b"}\r\n") {
            return TestResult::discard();
        }
        let mut input = wire.to_vec();
        input.extend_from_slice(b"z NOOP\r\n");
        let whole = answers(&[&input]);
        for cut in 1..input.len() {
            let (a, b) = input.split_at(cut);
            let split = answers(&[a, b]);
            if split != whole {
                return TestResult::error(format!(
                    "cut at {cut} of {:?}\n  whole {:?}\n  split {:?}",
                    String::from_utf8_lossy(&input),
                    String::from_utf8_lossy(&whole),
                    String::from_utf8_lossy(&split)
                ));
            }
        }
        let octets: Vec<&[u8]> = input.chunks(1).collect();
        if answers(&octets) != whole {
            return TestResult::error("fed an octet at a time, the answer differs");
        }
        TestResult::passed()
    }
    // Each case runs one session per cut point, so fewer cases than the other properties.
    let mut qc = QuickCheck::new().rng(Gen::new(12)).max_tests(1_000_000);
    if std::env::var_os("QUICKCHECK_TESTS").is_none() {
        qc = qc.tests(300);
    }
    qc.quickcheck(prop as fn(ArbCommand) -> TestResult);
}

// ---------------------------------------------------------------- responses

/// Human-readable text: non-empty, 7-bit, no `[` (it would read as a response code) and no
/// `{` (a trailing `{n}` would read as a literal announcement).
fn text(g: &mut Gen) -> String {
    let chars = b"abcXYZ019 .,:;!?()-_'\"/\\]*%";
    let mut s = String::from_utf8(from_chars(g, chars, 1, 20).to_vec()).unwrap();
    if s.starts_with(' ') && chance(g, 2) {
        s.insert(0, 'x');
    }
    s
}

fn code(g: &mut Gen) -> Code {
    match below(g, 46) {
        0 => Code::Alert,
        1 => Code::AlreadyExists,
        2 => Code::AppendUid {
            uid_validity: nz32(g),
            uids: ranges(g),
        },
        3 => Code::AuthenticationFailed,
        4 => Code::AuthorizationFailed,
        5 => Code::BadCharset(vec_of(g, 0, 3, string)),
        6 => Code::Cannot,
        7 => Code::Capability(vec_of(g, 0, 4, atom)),
        8 => Code::ClientBug,
        9 => Code::Closed,
        10 => Code::ContactAdmin,
        11 => Code::CopyUid {
            uid_validity: nz32(g),
            source: ranges(g),
            target: ranges(g),
        },
        12 => Code::Corruption,
        13 => Code::Expired,
        14 => Code::ExpungeIssued,
        15 => Code::HasChildren,
        16 => Code::HighestModSeq(u64_63(g)),
        17 => Code::InUse,
        18 => Code::Limit,
        19 => Code::Modified(sequence_set(g)),
        20 => Code::NoModSeq,
        21 => Code::NonExistent,
        22 => Code::NoPerm,
        23 => Code::NotSaved,
        24 => Code::OverQuota,
        25 => Code::Parse,
        26 => Code::PermanentFlags {
            flags: vec_of(g, 0, 4, flag),
            keywords: bool::arbitrary(g),
        },
        27 => Code::PrivacyRequired,
        28 => Code::ReadOnly,
        29 => Code::ReadWrite,
        30 => Code::ServerBug,
        31 => Code::TooBig,
        32 => Code::TryCreate,
        33 => Code::UidNext(u32::arbitrary(g)),
        34 => Code::UidNotSticky,
        35 => Code::UidValidity(u32::arbitrary(g)),
        36 => Code::Unavailable,
        37 => Code::UnknownCte,
        38 => Code::Unseen(u32::arbitrary(g)),
        39 => Code::MailboxId(object_id(g)),
        40 => Code::UidRequired,
        42 => Code::Metadata(match below(g, 4) {
            0 => MetadataCode::LongEntries(u32::arbitrary(g)),
            1 => MetadataCode::MaxSize(u32::arbitrary(g)),
            2 => MetadataCode::TooMany,
            _ => MetadataCode::NoPrivate,
        }),
        41 => Code::InProgress(maybe(g, |g| {
            let done = maybe(g, u32::arbitrary);
            Progress {
                // RFC 9585 §4: a tag holding "]" is sent as NIL.
                tag: maybe(g, tag)
                    .map(|t| Bytes::copy_from_slice(t.as_bytes()))
                    .filter(|t| !t.contains(&b']')),
                done,
                goal: done.and_then(|d| maybe(g, |g| d.saturating_add(nz32(g)).max(1))),
            }
        })),
        _ => Code::Other(
            x_atom(g),
            maybe(g, |g| Bytes::from(text(g).replace(']', ")").into_bytes())),
        ),
    }
}

fn address(g: &mut Gen) -> Address {
    Address {
        name: nstring(g),
        adl: nstring(g),
        mailbox: nstring(g),
        host: nstring(g),
    }
}

fn envelope(g: &mut Gen) -> Envelope {
    let list = |g: &mut Gen| vec_of(g, 0, 2, address);
    Envelope {
        date: nstring(g),
        subject: nstring(g),
        from: list(g),
        sender: list(g),
        reply_to: list(g),
        to: list(g),
        cc: list(g),
        bcc: list(g),
        in_reply_to: nstring(g),
        message_id: nstring(g),
    }
}

fn params(g: &mut Gen) -> Vec<(Bytes, Bytes)> {
    vec_of(g, 0, 2, |g| (string(g), string(g)))
}

fn body_ext(g: &mut Gen, ext: bool) -> BodyExtension {
    if !ext {
        return BodyExtension::default();
    }
    BodyExtension {
        disposition: maybe(g, |g| Disposition {
            kind: string(g),
            params: params(g),
        }),
        language: vec_of(g, 0, 3, string),
        location: nstring(g),
    }
}

fn body_fields(g: &mut Gen) -> BodyFields {
    BodyFields {
        params: params(g),
        id: nstring(g),
        description: nstring(g),
        encoding: string(g),
        octets: u64_63(g),
    }
}

/// A body structure; without `ext` (plain BODY) every extension field keeps its default,
/// since BODY does not carry them.
fn body(g: &mut Gen, ext: bool, depth: usize) -> BodyStructure {
    match below(g, if depth >= 2 { 1 } else { 3 }) {
        0 => BodyStructure::Single {
            media_type: string(g),
            subtype: string(g),
            fields: body_fields(g),
            lines: maybe(g, u64_63),
            md5: if ext { nstring(g) } else { None },
            ext: body_ext(g, ext),
        },
        1 => BodyStructure::Message {
            subtype: string(g),
            fields: body_fields(g),
            envelope: Box::new(envelope(g)),
            body: Box::new(body(g, ext, depth + 1)),
            lines: u64_63(g),
            md5: if ext { nstring(g) } else { None },
            ext: body_ext(g, ext),
        },
        _ => BodyStructure::Multipart {
            parts: vec_of(g, 1, 3, |g| body(g, ext, depth + 1)),
            subtype: string(g),
            params: if ext { params(g) } else { vec![] },
            ext: body_ext(g, ext),
        },
    }
}

fn fetch_item(g: &mut Gen) -> FetchItem {
    match below(g, 19) {
        0 => FetchItem::Flags(vec_of(g, 0, 4, flag)),
        1 => FetchItem::Uid(u32::arbitrary(g)),
        2 => FetchItem::InternalDate(date_time(g)),
        3 => FetchItem::Rfc822Size(u64_63(g)),
        4 => FetchItem::Envelope(Box::new(envelope(g))),
        5 => FetchItem::Body(Box::new(body(g, false, 0))),
        6 => FetchItem::BodyStructure(Box::new(body(g, true, 0))),
        7 | 8 => FetchItem::BodySection {
            section: section(g),
            origin: maybe(g, u32::arbitrary),
            data: maybe(g, octets),
        },
        9 => FetchItem::Binary {
            part: part(g),
            origin: maybe(g, u32::arbitrary),
            data: maybe(g, octets),
        },
        10 => FetchItem::BinarySize {
            part: part(g),
            size: u64_63(g),
        },
        11 => FetchItem::Rfc822(maybe(g, octets)),
        12 => FetchItem::Rfc822Header(nstring(g)),
        13 => FetchItem::Rfc822Text(nstring(g)),
        14 => FetchItem::ModSeq(u64_63(g)),
        15 => FetchItem::EmailId(object_id(g)),
        16 => FetchItem::ThreadId(maybe(g, object_id)),
        17 => FetchItem::SaveDate(maybe(g, date_time)),
        _ => FetchItem::Preview(nstring(g)),
    }
}

/// A thread in the one shape RFC 5256 can write: a node without a message has two or more
/// children, and a single reply always is a message.
fn thread(g: &mut Gen, depth: usize, dummy_ok: bool) -> ThreadNode {
    let n = if depth >= 3 { 0 } else { below(g, 4) };
    if dummy_ok && n >= 2 && chance(g, 3) {
        return ThreadNode {
            seq: None,
            children: (0..n).map(|_| thread(g, depth + 1, true)).collect(),
        };
    }
    ThreadNode {
        seq: Some(u32::arbitrary(g)),
        children: (0..n).map(|_| thread(g, depth + 1, n >= 2)).collect(),
    }
}

fn namespace(g: &mut Gen) -> Option<Vec<(Bytes, Option<u8>)>> {
    maybe(g, |g| {
        vec_of(g, 1, 2, |g| (string(g), maybe(g, |g| pick(g, b"/.\\\""))))
    })
}

fn list_item(g: &mut Gen) -> ListItem {
    ListItem {
        attributes: vec_of(g, 0, 3, |g| {
            let mut v = if bool::arbitrary(g) {
                b"\\".to_vec()
            } else {
                vec![]
            };
            v.extend(atom(g));
            Bytes::from(v)
        }),
        delimiter: maybe(g, |g| pick(g, b"/.\\\"")),
        name: octets(g),
        extended: vec_of(g, 0, 2, |g| (string(g), vec_of(g, 0, 2, string))),
    }
}

fn data(g: &mut Gen) -> Data {
    match below(g, 22) {
        0 => Data::Capability(vec_of(g, 0, 4, atom)),
        1 => Data::Enabled(vec_of(g, 0, 4, atom)),
        2 => Data::List(list_item(g)),
        3 => Data::Lsub(list_item(g)),
        4 => Data::Namespace {
            personal: namespace(g),
            other: namespace(g),
            shared: namespace(g),
        },
        5 => Data::Status {
            mailbox: octets(g),
            items: vec_of(g, 0, 4, |g| {
                let v = match below(g, 3) {
                    0 => StatusValue::Number(u64_63(g)),
                    1 => StatusValue::Nil,
                    _ => StatusValue::ObjectId(object_id(g)),
                };
                (status_item(g), v)
            }),
        },
        6 => {
            let tag = maybe(g, tag);
            // RFC 7377's MAILBOX and UIDVALIDITY correlators go with a tag only.
            let mailbox = if tag.is_some() {
                maybe(g, |g| (string(g), nz32(g)))
            } else {
                None
            };
            Data::ESearch {
                tag,
                mailbox,
                uid: bool::arbitrary(g),
                results: vec_of(g, 0, 4, |g| match below(g, 6) {
                    5 => ESearchResult::Partial(partial_range(g), maybe(g, ranges)),
                    0 => ESearchResult::Min(u32::arbitrary(g)),
                    1 => ESearchResult::Max(u32::arbitrary(g)),
                    2 => ESearchResult::Count(u32::arbitrary(g)),
                    3 => ESearchResult::All(ranges(g)),
                    _ => ESearchResult::ModSeq(u64_63(g)),
                }),
            }
        }
        7 => {
            let numbers = vec_of(g, 0, 5, u32::arbitrary);
            let mod_seq = if numbers.is_empty() {
                None
            } else {
                maybe(g, u64_63)
            };
            Data::Search { numbers, mod_seq }
        }
        8 => {
            let numbers = vec_of(g, 0, 5, u32::arbitrary);
            let mod_seq = if numbers.is_empty() {
                None
            } else {
                maybe(g, u64_63)
            };
            Data::Sort { numbers, mod_seq }
        }
        9 => Data::Thread(vec_of(g, 0, 3, |g| thread(g, 0, true))),
        10 => Data::Flags(vec_of(g, 0, 5, flag)),
        11 => Data::Exists(u32::arbitrary(g)),
        12 => Data::Recent(u32::arbitrary(g)),
        13 => Data::Expunge(u32::arbitrary(g)),
        14 => Data::Vanished {
            earlier: bool::arbitrary(g),
            uids: ranges(g),
        },
        15..=16 => Data::Fetch {
            seq: u32::arbitrary(g),
            items: vec_of(g, 1, 4, fetch_item),
        },
        17 => Data::UidFetch {
            uid: u32::arbitrary(g),
            items: vec_of(g, 1, 4, fetch_item),
        },
        18 => Data::Id(maybe(g, |g| vec_of(g, 0, 3, |g| (string(g), nstring(g))))),
        19 => Data::Quota {
            root: string(g),
            resources: vec_of(g, 0, 3, |g| (atom(g), u64_63(g), u64_63(g))),
        },
        20 => Data::QuotaRoot {
            mailbox: string(g),
            roots: vec_of(g, 0, 3, string),
        },
        _ => Data::Metadata {
            mailbox: string(g),
            entries: vec_of(g, 0, 3, |g| (string(g), maybe(g, octets))),
        },
    }
}

fn response(g: &mut Gen) -> Response {
    match below(g, 10) {
        0..=2 => {
            let tagged = bool::arbitrary(g);
            let condition = if tagged {
                pick(g, &[Condition::Ok, Condition::No, Condition::Bad])
            } else {
                pick(
                    g,
                    &[
                        Condition::Ok,
                        Condition::No,
                        Condition::Bad,
                        Condition::PreAuth,
                        Condition::Bye,
                    ],
                )
            };
            Response::Status(StatusResponse {
                tag: tagged.then(|| tag(g)),
                condition,
                code: maybe(g, code),
                text: text(g),
            })
        }
        3 => Response::Continue(from_chars(g, b"abcXYZ019+/= []()", 0, 20)),
        _ => Response::Data(data(g)),
    }
}

#[derive(Clone, Debug)]
struct ArbResponse(Response, bool);

impl Arbitrary for ArbResponse {
    fn arbitrary(g: &mut Gen) -> Self {
        ArbResponse(response(g), bool::arbitrary(g))
    }
}

#[test]
fn parse_response_inverts_encode() {
    fn prop(r: ArbResponse) -> TestResult {
        let opts = if r.1 {
            EncodeOptions::utf8()
        } else {
            EncodeOptions::ascii()
        };
        let mut out = BytesMut::new();
        encode::response(&mut out, &r.0, &opts);
        match parse_response(&out) {
            Ok((back, used)) if back == r.0 && used == out.len() => TestResult::passed(),
            other => TestResult::error(format!(
                "{:?}\n  wire {:?}\n  got {other:?}",
                r.0,
                String::from_utf8_lossy(&out)
            )),
        }
    }
    checker().quickcheck(prop as fn(ArbResponse) -> TestResult);
}

#[test]
fn ascii_responses_stay_seven_bit_outside_literals() {
    fn prop(r: ArbResponse) -> bool {
        let mut out = BytesMut::new();
        encode::response(&mut out, &r.0, &EncodeOptions::ascii());
        // Strip literal bodies, then every octet must be 7-bit.
        let mut rest: &[u8] = &out;
        let mut ok = true;
        while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(lf + 1);
            ok &= line.is_ascii();
            let n = line
                .strip_suffix(b"}\r\n")
                .and_then(|l| l.iter().rposition(|&b| b == b'{').map(|o| &l[o + 1..]))
                .and_then(|d| std::str::from_utf8(d).ok()?.parse::<usize>().ok());
            rest = match n {
                Some(n) => &tail[n.min(tail.len())..],
                None => tail,
            };
        }
        ok
    }
    checker().quickcheck(prop as fn(ArbResponse) -> bool);
}

/// The response generator reaches every `Data`, `Code` and `FetchItem` variant, so the
/// round trip above covers every response the AST can express.
#[test]
fn every_response_variant_is_generated() {
    let mut g = Gen::new(12);
    let name = |s: String| {
        s.split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let (mut data, mut codes, mut items) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for _ in 0..20_000 {
        match response(&mut g) {
            Response::Data(d) => {
                if let Data::Fetch { items: list, .. } = &d {
                    items.extend(list.iter().map(|i| name(format!("{i:?}"))));
                }
                data.insert(name(format!("{d:?}")));
            }
            Response::Status(s) => codes.extend(s.code.map(|c| name(format!("{c:?}")))),
            Response::Continue(_) => {}
        }
    }
    // The variant counts of `Data`, `Code` and `FetchItem` in src/imap/response.rs.
    assert_eq!(data.len(), 21, "{data:?}");
    assert_eq!(codes.len(), 44, "{codes:?}");
    assert_eq!(items.len(), 18, "{items:?}");
}

/// RFC 9394 §3.1: a range names the results at exactly those positions, counted from the
/// first or (with minus signs) from the last, its ends in either order; positions past the
/// results name nothing, and what is picked stays in mailbox order.
#[test]
fn partial_range_picks_exactly_its_positions() {
    fn prop(len: u8, a: u8, b: u8, last: bool) -> TestResult {
        let (Some(a), Some(b)) = (NonZeroU32::new(a.into()), NonZeroU32::new(b.into())) else {
            return TestResult::discard();
        };
        let items: Vec<u32> = (1..=u32::from(len)).collect();
        let range = if last {
            PartialRange::Last(a, b)
        } else {
            PartialRange::First(a, b)
        };
        let (lo, hi) = (a.min(b).get(), a.max(b).get());
        let n = u32::from(len);
        let expected: Vec<u32> = items
            .iter()
            .copied()
            .filter(|&i| (lo..=hi).contains(&if last { n + 1 - i } else { i }))
            .collect();
        TestResult::from_bool(range.pick(&items) == expected.as_slice())
    }
    checker().quickcheck(prop as fn(u8, u8, u8, bool) -> TestResult);
}
