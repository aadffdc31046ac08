//! Many sessions writing one account at once, with and without group commit: the figure behind
//! `group.rs`. Each of `THREADS` threads repeats, `OPS` requests in all, the writes of the
//! standard mixed IMAP workload on one message: APPEND, STORE of a flag, STORE of `\Deleted`,
//! UID EXPUNGE; every request durable (`synchronous=FULL`), the mailbox staying small.
//!
//! ```text
//! cargo run --release -p tern-store-sqlite --example concurrent [THREADS] [OPS]
//! ```

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tern_core::mail::flags::{Flag, StoreMode};
use tern_core::store::{MailboxId, NewMessage};
use tern_core::{StorageOp, StorageReply};
use tern_store_sqlite::SqliteStore;

fn run(threads: usize, ops: usize, max_batch: usize) -> Result<(f64, String), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut store = SqliteStore::open(dir.path()).map_err(|e| e.to_string())?;
    store.set_max_batch(max_batch);
    let store = Arc::new(store);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let mut last = None;
                for i in 0..ops {
                    let flag = |flag| StorageOp::SetFlags {
                        account: "alice".into(),
                        mailbox: MailboxId(1),
                        uids: last.into_iter().collect(),
                        mode: StoreMode::Add,
                        flags: vec![flag],
                        unchanged_since: None,
                    };
                    let op = match i % 4 {
                        1 => flag(Flag::Flagged),
                        2 => flag(Flag::Deleted),
                        3 => StorageOp::Expunge {
                            account: "alice".into(),
                            mailbox: MailboxId(1),
                            uids: Some(last.into_iter().collect()),
                        },
                        _ => StorageOp::Append {
                            account: "alice".into(),
                            name: "INBOX".into(),
                            messages: vec![NewMessage {
                                flags: Vec::new(),
                                internal_date: None,
                                data: Bytes::from(format!(
                                    "From: t{t}@example.org\r\nSubject: message {i}\r\n\r\n\
                                     A short body, as most mail is. {t} {i}\r\n"
                                )),
                            }],
                        },
                    };
                    match store.execute_shared(op, 1_767_225_600).0 {
                        Ok(StorageReply::Appended { uids, .. }) => last = uids.first().copied(),
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a thread panicked".to_string())??;
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = store.batch_stats("alice").map_err(|e| e.to_string())?;
    Ok((
        (threads * ops) as f64 / secs,
        format!(
            "{} batches of {:.1} requests on average",
            stats.batches,
            stats.batched as f64 / stats.batches.max(1) as f64
        ),
    ))
}

fn main() -> Result<(), String> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let threads = args.first().copied().unwrap_or(10);
    let ops = args.get(1).copied().unwrap_or(200);
    for (label, max_batch) in [("alone", 1), ("group commit", tern_store_sqlite::MAX_BATCH)] {
        let (rate, note) = run(threads, ops, max_batch)?;
        println!("{threads} threads, {label}: {rate:.0} requests/s ({note})");
    }
    Ok(())
}
