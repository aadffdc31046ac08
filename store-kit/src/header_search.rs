//! SEARCH narrowed by an index must never lose a message the evaluator would match (issue 14,
//! item 8): for random header values and bodies (punctuation, quotes, FTS5 syntax, short
//! strings, white space, case and Unicode that folds to other lengths) and random substrings
//! of them, the backend and the reference find the same messages with HEADER, BODY and TEXT,
//! and both find the message whose raw text holds the substring. The backend is asked
//! before and after it settles ([`Backend::settle`](crate::Backend::settle)), so an index is
//! checked as well as the path for messages it does not hold yet.
//!
//! Budget: 200 cases (`TERN_HEADER_SEARCH_CASES=n` runs n), at most twice as many drawn.

use bytes::Bytes;
use quickcheck::{Arbitrary, Gen};
use tern_core::mail::text::fold;
use tern_core::store::query::Query;
use tern_core::store::{MailStore, NewMessage, StorageOp, StorageReply};

use crate::{reference, Backend};

/// Header fields mail-parser reads in different ways: unstructured text, addresses, message
/// IDs, a list, an unknown field.
const NAMES: &[&str] = &[
    "subject",
    "from",
    "to",
    "in-reply-to",
    "message-id",
    "references",
    "keywords",
    "x-custom",
    "list-id",
];

/// Characters header values are made of: FTS5 syntax (`"*^:(){}+-`), address and message-ID
/// punctuation, white space, case, and characters whose lower case is longer or shorter.
const CHARS: &[char] = &[
    'a', 'b', 'c', 'x', 'A', 'B', 'Z', '0', '1', '9', ' ', ' ', '\t', '<', '>', '@', '-', '_', '.',
    ':', ';', ',', '"', '\'', '(', ')', '[', ']', '{', '}', '\\', '/', '*', '^', '+', '%', '!',
    '#', '&', '|', '~', '`', '$', 'é', 'É', 'ß', 'İ', 'Σ', 'ς', 'Ω', '日', '本', '🙂', 'ﬁ', 'K',
];

#[derive(Clone, Debug)]
struct Case {
    /// (field name, raw value) per message.
    headers: Vec<(String, String)>,
    /// Which message's value the needle is cut from, and the char range.
    pick: usize,
    start: usize,
    len: usize,
    /// 0: HEADER, 1: BODY, 2: TEXT (each message's body is its header value).
    key: u8,
}

fn value(g: &mut Gen) -> String {
    let len = usize::arbitrary(g) % 24 + 1;
    let mut v: String = (0..len).map(|_| *g.choose(CHARS).unwrap_or(&'a')).collect();
    // A few well-formed shapes the issue came from.
    match u8::arbitrary(g) % 6 {
        0 => v = format!("<s1-{}@example.org>", v.replace(['<', '>'], "")),
        1 => v = format!("\"{v}\" <joe.{}@example.org>", u8::arbitrary(g)),
        _ => {}
    }
    v
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Case {
        let n = usize::arbitrary(g) % 4 + 1;
        let headers: Vec<(String, String)> = (0..n)
            .map(|_| (g.choose(NAMES).unwrap().to_string(), value(g)))
            .collect();
        let pick = usize::arbitrary(g) % n;
        let chars = headers[pick].1.chars().count();
        let start = usize::arbitrary(g) % chars;
        let len = usize::arbitrary(g) % (chars - start) + 1;
        Case {
            headers,
            pick,
            start,
            len,
            key: u8::arbitrary(g) % 3,
        }
    }
}

fn message(name: &str, value: &str, i: usize) -> Bytes {
    Bytes::from(format!(
        "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n{name}: {value}\r\nX-Seq: m{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{value}\r\n"
    ))
}

fn search(store: &dyn MailStore, query: Query) -> Result<Vec<u32>, String> {
    let now = 1_800_000_000;
    let open = StorageOp::Open {
        account: "alice".into(),
        name: "INBOX".into(),
        read_only: true,
    };
    let mailbox = match store.execute(open, now, &|| false) {
        Ok(StorageReply::Opened(s)) => s.id,
        other => return Err(format!("SELECT: {other:?}")),
    };
    let search = StorageOp::Search {
        account: "alice".into(),
        mailbox,
        uids: (1..20).collect(),
        query,
    };
    match store.execute(search, now, &|| false) {
        Ok(StorageReply::Found(uids)) => Ok(uids),
        other => Err(format!("SEARCH: {other:?}")),
    }
}

/// What became of one case.
enum Outcome {
    Passed,
    Discarded,
}

fn run(backend: &mut dyn Backend, case: &Case) -> Result<Outcome, String> {
    let (name, raw) = &case.headers[case.pick];
    let needle: String = raw.chars().skip(case.start).take(case.len).collect();
    // "=?" could start an RFC 2047 word, which SEARCH matches decoded, not as written.
    if case.headers.iter().any(|(_, v)| v.contains("=?")) {
        return Ok(Outcome::Discarded);
    }
    let sql = backend.fresh(None);
    let mem = reference();
    for store in [&sql, &mem] {
        let messages = case
            .headers
            .iter()
            .enumerate()
            .map(|(i, (n, v))| NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: message(n, v, i),
            })
            .collect();
        let append = StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages,
        };
        store
            .execute(append, 1_800_000_000, &|| false)
            .map_err(|e| format!("APPEND: {e}"))?;
    }
    let query = match case.key {
        0 => Query::Header(name.clone(), fold(&needle)),
        1 => Query::Body(fold(&needle)),
        _ => Query::Text(fold(&needle)),
    };
    let from_mem = search(mem.as_ref(), query.clone())?;
    // Before the backend's index holds the messages, and after.
    for settled in [false, true] {
        if settled {
            backend.settle("alice");
        }
        let from_sql = search(sql.as_ref(), query.clone())?;
        if from_sql != from_mem {
            return Err(format!(
                "{query:?} (settled: {settled}): backend {from_sql:?}, reference {from_mem:?}"
            ));
        }
    }
    let uid = case.pick as u32 + 1;
    if !from_mem.contains(&uid) {
        return Err(format!(
            "{query:?} misses message {uid} ({name}: {raw}): found {from_mem:?}"
        ));
    }
    Ok(Outcome::Passed)
}

/// Runs `cases` passing cases (drawing at most twice as many); the first failure, with its
/// case, is the error. Cases do not shrink.
pub fn check(backend: &mut dyn Backend, cases: u64) -> Result<(), String> {
    let mut g = Gen::new(100);
    let mut passed = 0;
    for _ in 0..cases.saturating_mul(2) {
        if passed >= cases {
            break;
        }
        let case = Case::arbitrary(&mut g);
        match run(backend, &case) {
            Ok(Outcome::Passed) => passed += 1,
            Ok(Outcome::Discarded) => {}
            Err(e) => return Err(format!("{e}\n{case:?}")),
        }
    }
    // The fixed example of issue 14 item 8, whatever the draw.
    let example = Case {
        headers: vec![("in-reply-to".into(), "<s1-20260101@example.org>".into())],
        pick: 0,
        start: 0,
        len: 4,
        key: 0,
    };
    run(backend, &example).map(|_| ())
}

/// The property: 200 cases (`TERN_HEADER_SEARCH_CASES` overrides). Panics with the first
/// failing case.
pub fn header_search(backend: &mut dyn Backend) {
    let cases = std::env::var("TERN_HEADER_SEARCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    if let Err(e) = check(backend, cases) {
        panic!("[header search] {e}");
    }
}
