//! Store figures: a mailbox of N generated messages (default 100,000; `TERN_BENCH_MESSAGES`
//! overrides), then the operations a client session costs. Run with
//! `cargo bench -p tern-store-sqlite --bench store`; the figures are recorded in the crate
//! docs. Every write is durable (one fsync'd commit per APPEND), as in the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tern_store_kit::gen;

use std::path::Path;
use std::time::{Duration, Instant};

use tern_core::mail::flags::{Flag, StoreMode};
use tern_core::store::query::Query;
use tern_core::store::{FetchWant, MailboxId, NewMessage, StorageOp, StorageReply};
use tern_core::Store;
use tern_store_sqlite::SqliteStore;

const ACCOUNT: &str = "bench";

fn op(store: &mut SqliteStore, op: StorageOp) -> StorageReply {
    store.execute(op).expect("storage operation")
}

fn report(what: &str, elapsed: Duration, detail: &str) {
    println!(
        "{what:<34} {:>10.1} ms  {detail}",
        elapsed.as_secs_f64() * 1000.0
    );
}

fn folder_size(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            folder_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u32 = std::env::var("TERN_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let mut rng = gen::Rng::new(2026);
    println!(
        "tern-store-sqlite bench: {n} messages, {}",
        dir.path().display()
    );

    // The first messages arrive one APPEND (one fsync'd commit) each, as delivery does; the
    // rest as MULTIAPPENDs of 100, as an import does, so that 100,000 messages fit in a few
    // minutes even though every commit is durable.
    let single = n.min(5_000);
    let mut sizes = Vec::with_capacity(n as usize);
    for (what, count, batch) in [
        ("APPEND, one message per command", single, 1usize),
        ("APPEND, 100 messages per command", n - single, 100),
    ] {
        if count == 0 {
            continue;
        }
        let mut elapsed = Duration::ZERO;
        let mut bytes = 0u64;
        let mut left = count as usize;
        while left > 0 {
            let take = left.min(batch);
            left -= take;
            let messages: Vec<NewMessage> = (0..take)
                .map(|_| {
                    let data = gen::message(&mut rng, gen::REALISTIC);
                    bytes += data.len() as u64;
                    sizes.push(data.len() as u64);
                    NewMessage {
                        flags: gen::flags(&mut rng),
                        internal_date: None,
                        data,
                    }
                })
                .collect();
            let t = Instant::now();
            op(
                &mut store,
                StorageOp::Append {
                    account: ACCOUNT.into(),
                    name: "INBOX".into(),
                    messages,
                },
            );
            elapsed += t.elapsed();
        }
        report(
            what,
            elapsed,
            &format!(
                "{count} messages: {:.0} msg/s, {:.1} MB/s, {:.1} KB average",
                f64::from(count) / elapsed.as_secs_f64(),
                bytes as f64 / 1e6 / elapsed.as_secs_f64(),
                bytes as f64 / 1e3 / f64::from(count),
            ),
        );
    }

    let t = Instant::now();
    let StorageReply::Opened(snapshot) = op(
        &mut store,
        StorageOp::Open {
            account: ACCOUNT.into(),
            name: "INBOX".into(),
            read_only: false,
        },
    ) else {
        panic!("not opened")
    };
    report(
        "SELECT (snapshot of every message)",
        t.elapsed(),
        &format!("{} messages", snapshot.uids.len()),
    );
    let mailbox: MailboxId = snapshot.id;
    let all: Vec<u32> = snapshot.uids.to_vec();

    let t = Instant::now();
    let StorageReply::Fetched(f) = op(
        &mut store,
        StorageOp::Fetch {
            account: ACCOUNT.into(),
            mailbox,
            uids: all.clone(),
            want: FetchWant::default(),
            mark_seen: false,
        },
    ) else {
        panic!()
    };
    report(
        "FETCH 1:* (UID FLAGS)",
        t.elapsed(),
        &format!("{} messages", f.len()),
    );

    let last: Vec<u32> = all[all.len().saturating_sub(1000)..].to_vec();
    let t = Instant::now();
    let StorageReply::Fetched(f) = op(
        &mut store,
        StorageOp::Fetch {
            account: ACCOUNT.into(),
            mailbox,
            uids: last,
            want: FetchWant {
                content: false,
                info: true,
                header_only: false,
                ..Default::default()
            },
            mark_seen: false,
        },
    ) else {
        panic!()
    };
    report(
        "FETCH last 1,000 (ENVELOPE)",
        t.elapsed(),
        &format!("{} messages", f.len()),
    );

    for (what, query) in [
        ("SEARCH TEXT rare word", Query::Text("tk0421".into())),
        ("SEARCH TEXT common word", Query::Text("budget".into())),
        (
            "SEARCH BODY two words",
            Query::Body("quarterly report".into()),
        ),
        (
            "SEARCH FROM address",
            Query::Header("from".into(), "carol@music.test".into()),
        ),
        (
            "SEARCH UNSEEN (no text)",
            Query::Flag(tern_core::mail::flags::SystemFlag::Seen, false),
        ),
        ("SEARCH TEXT 2-char (scan)", Query::Text("zq".into())),
    ] {
        let t = Instant::now();
        let StorageReply::Found(found) = op(
            &mut store,
            StorageOp::Search {
                account: ACCOUNT.into(),
                mailbox,
                uids: all.clone(),
                query,
            },
        ) else {
            panic!()
        };
        report(what, t.elapsed(), &format!("{} found", found.len()));
    }

    let first: Vec<u32> = all.iter().copied().take(10_000).collect();
    let t = Instant::now();
    let StorageReply::FlagsSet { updated, .. } = op(
        &mut store,
        StorageOp::SetFlags {
            account: ACCOUNT.into(),
            mailbox,
            uids: first.clone(),
            mode: StoreMode::Add,
            flags: vec![Flag::Flagged],
            unchanged_since: None,
        },
    ) else {
        panic!()
    };
    report(
        "STORE +FLAGS \\Flagged on 10,000",
        t.elapsed(),
        &format!("{} updated", updated.len()),
    );

    // Expunge exactly 10,000: \Deleted on the first 10,000 (some may already carry it).
    op(
        &mut store,
        StorageOp::SetFlags {
            account: ACCOUNT.into(),
            mailbox,
            uids: all.clone(),
            mode: StoreMode::Remove,
            flags: vec![Flag::Deleted],
            unchanged_since: None,
        },
    );
    op(
        &mut store,
        StorageOp::SetFlags {
            account: ACCOUNT.into(),
            mailbox,
            uids: first,
            mode: StoreMode::Add,
            flags: vec![Flag::Deleted],
            unchanged_since: None,
        },
    );
    let t = Instant::now();
    let StorageReply::Expunged(gone) = op(
        &mut store,
        StorageOp::Expunge {
            account: ACCOUNT.into(),
            mailbox,
            uids: None,
        },
    ) else {
        panic!()
    };
    report(
        "EXPUNGE 10,000",
        t.elapsed(),
        &format!("{} expunged", gone.len()),
    );

    let t = Instant::now();
    let reclaimed = store.reclaim(ACCOUNT).unwrap();
    report(
        "reclaim expunged bodies (maintenance)",
        t.elapsed(),
        &format!("{reclaimed} bodies"),
    );

    let t = Instant::now();
    let StorageReply::Opened(s) = op(
        &mut store,
        StorageOp::Open {
            account: ACCOUNT.into(),
            name: "INBOX".into(),
            read_only: true,
        },
    ) else {
        panic!()
    };
    report(
        "EXAMINE after expunge",
        t.elapsed(),
        &format!("{} messages", s.uids.len()),
    );

    let account_dir = store.account_dir(ACCOUNT).unwrap();
    // Closing checkpoints the WAL into the database and removes it: what stays on disk.
    drop(store);
    let reopened = Instant::now();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.open_account(ACCOUNT).unwrap();
    report("reopen account", reopened.elapsed(), "");
    drop(store);
    let remaining = f64::from(n.saturating_sub(10_000).max(1));
    let raw_remaining = sizes.iter().skip(10_000).sum::<u64>() as f64;
    let disk = folder_size(&account_dir) as f64;
    let blobs = folder_size(&account_dir.join(tern_store_sqlite::BLOB_FOLDER)) as f64;
    println!(
        "disk: {:.1} MB for {remaining:.0} messages: {:.0} bytes/message, {:.2}x raw \
         (database {:.1} MB, body files {:.1} MB; raw about {:.1} MB)",
        disk / 1e6,
        disk / remaining,
        disk / raw_remaining,
        (disk - blobs) / 1e6,
        blobs / 1e6,
        raw_remaining / 1e6
    );
}
