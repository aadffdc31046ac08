//! THREADID assignment under load and hostile headers: every message gets a conversation, and
//! the work per message stays bounded whatever its References hold (`tern_core::mail::thread`
//! keeps at most 16 of them). The hostile cases always run; `TERN_TESTMAIL=DIR` adds every
//! file of a folder of real and broken messages (ignored otherwise, since the corpus is not
//! part of the repository): `TERN_TESTMAIL=/work/shared/testmail cargo test -p
//! tern-store-sqlite --release --test threading -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_core::mail::thread::ThreadKeys;
use tern_core::store::{
    FetchWant, MailStore, MailboxId, NewMessage, StorageOp, StorageReply, ThreadId,
};
use tern_store_sqlite::SqliteStore;

const NOW: i64 = 1_767_225_600;

fn append(store: &SqliteStore, data: Bytes) -> Duration {
    let started = Instant::now();
    let reply = store.execute(
        StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data,
            }],
        },
        NOW,
        &|| false,
    );
    assert!(
        matches!(reply, Ok(StorageReply::Appended { .. })),
        "{reply:?}"
    );
    started.elapsed()
}

fn threads(store: &SqliteStore) -> Vec<ThreadId> {
    match store.execute(
        StorageOp::Fetch {
            account: "alice".into(),
            mailbox: MailboxId(1),
            uids: (1..100_000).collect(),
            want: FetchWant::default(),
            mark_seen: false,
        },
        NOW,
        &|| false,
    ) {
        Ok(StorageReply::Fetched(f)) => f.into_iter().map(|m| m.thread_id).collect(),
        other => panic!("{other:?}"),
    }
}

fn crlf(raw: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    Bytes::from(out)
}

/// Hostile References: ten thousand identifiers, one megabyte of them, identifiers of
/// thousands of octets, unclosed brackets, and a conversation rebuilt from the last few.
#[test]
fn hostile_references_cost_little_and_still_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let root = Bytes::from_static(b"Message-ID: <root@x>\r\nSubject: r\r\n\r\nroot\r\n");
    let baseline = append(&store, root.clone());
    let many: String = (0..10_000)
        .map(|i| format!(" <{i}@spam.test>\r\n"))
        .collect();
    let hostile = [
        format!("Message-ID: <m1@x>\r\nReferences: <root@x>\r\n{many}\r\n\r\nx\r\n"),
        format!(
            "Message-ID: <m2@x>\r\nReferences: <root@x> {}\r\n\r\nx\r\n",
            "<".repeat(1 << 20)
        ),
        format!(
            "Message-ID: <m3@x>\r\nReferences: <{}> <root@x>\r\n\r\nx\r\n",
            "a".repeat(100_000)
        ),
        format!(
            "Message-ID: <m4@x>\r\nIn-Reply-To: {}<root@x>\r\n\r\nx\r\n",
            ">".repeat(1 << 20)
        ),
    ];
    let (mut worst, mut reading) = (Duration::ZERO, Duration::ZERO);
    for m in hostile {
        // What threading itself costs (the rest of an APPEND is storing a megabyte).
        let started = Instant::now();
        let keys = ThreadKeys::of(m.as_bytes());
        reading = reading.max(started.elapsed());
        assert!(keys.references.len() <= tern_core::mail::thread::MAX_REFERENCES);
        worst = worst.max(append(&store, Bytes::from(m)));
    }
    // A reply naming only recent ones of those ten thousand still joins.
    append(
        &store,
        Bytes::from_static(b"Message-ID: <m5@x>\r\nReferences: <9998@spam.test>\r\n\r\nx\r\n"),
    );
    let t = threads(&store);
    assert_eq!(t.len(), 6);
    assert!(t.iter().all(|&x| x == t[0]), "{t:?}");
    eprintln!(
        "hostile: worst append {worst:?} (a plain one {baseline:?}), reading the keys {reading:?} at most"
    );
}

#[test]
#[ignore = "needs TERN_TESTMAIL=DIR"]
fn a_corpus_threads_without_failing() {
    let Some(root) = std::env::var_os("TERN_TESTMAIL") else {
        return;
    };
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .is_some_and(|n| n != "INDEX.tsv" && n != "README.md")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let (mut total, mut worst, mut worst_file) = (Duration::ZERO, Duration::ZERO, None);
    for f in &files {
        let took = append(&store, crlf(&std::fs::read(f).unwrap()));
        total += took;
        if took > worst {
            (worst, worst_file) = (took, Some(f.clone()));
        }
    }
    let t = threads(&store);
    assert_eq!(t.len(), files.len());
    let distinct: std::collections::HashSet<_> = t.iter().collect();
    eprintln!(
        "{} messages, {} conversations; appends took {total:?} in all, the slowest {worst:?} ({worst_file:?})",
        files.len(),
        distinct.len()
    );
}

/// What threading adds to an APPEND, printed (no bound asserted: machines differ): 2,000
/// messages in one request (one commit), without identifiers and then each replying to the
/// one before with a References list of up to 16 identifiers.
#[test]
fn threading_cost_per_message() {
    let batch = |with_ids: bool| {
        (0..2000)
            .map(|i| {
                let refs: String = (i.max(16) - 16..i).map(|r| format!(" <{r}@x>")).collect();
                let headers = if with_ids {
                    format!("Message-ID: <{i}@x>\r\nReferences:{refs}\r\n")
                } else {
                    String::new()
                };
                NewMessage {
                    flags: Vec::new(),
                    internal_date: None,
                    data: Bytes::from(format!("{headers}Subject: s{i}\r\n\r\nbody {i}\r\n")),
                }
            })
            .collect::<Vec<_>>()
    };
    let mut took = Vec::new();
    for with_ids in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let messages = batch(with_ids);
        let started = Instant::now();
        let reply = store.execute(
            StorageOp::Append {
                account: "alice".into(),
                name: "INBOX".into(),
                messages,
            },
            NOW,
            &|| false,
        );
        assert!(matches!(reply, Ok(StorageReply::Appended { .. })));
        took.push(started.elapsed());
        let t = threads(&store);
        assert_eq!(t.len(), 2000);
        if with_ids {
            assert!(t.iter().all(|&x| x == t[0]), "one conversation");
        }
    }
    eprintln!(
        "2,000 APPENDs in one request: {:?} without identifiers, {:?} with 16 References each",
        took[0], took[1]
    );
}
