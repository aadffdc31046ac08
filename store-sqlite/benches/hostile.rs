//! Hostile SEARCH programs on one INBOX of N generated messages (default 20,000;
//! `TERN_BENCH_MESSAGES` overrides), each built as the IMAP session builds it from the
//! command line: `OR 1:* 1:*` 5,000 times, 2,000 ANDed `1:*`, 4,000 `NOT TEXT zzN`. Run with
//! `cargo bench -p tern-store-sqlite --bench hostile`; figures are in the crate docs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tern_store_kit::gen;

use std::time::Instant;

use tern_core::store::query::{Query, UidSet};
use tern_core::store::{NewMessage, StorageOp, StorageReply, StoreLimits, Uid};
use tern_core::Store;
use tern_store_sqlite::SqliteStore;

const ACCOUNT: &str = "bench";

/// Builds a search program.
type Program<'a> = Box<dyn Fn() -> Query + 'a>;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("TERN_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    if let Some(work) = std::env::var("TERN_BENCH_SEARCH_WORK")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        store.set_limits(StoreLimits {
            search_work: work,
            ..StoreLimits::default()
        });
    }
    let mut rng = gen::Rng::new(19);
    let t = Instant::now();
    let mut left = n;
    while left > 0 {
        let take = left.min(500);
        left -= take;
        let messages = (0..take)
            .map(|_| NewMessage {
                flags: gen::flags(&mut rng),
                internal_date: None,
                data: gen::message(&mut rng, gen::SMALL),
            })
            .collect();
        store
            .execute(StorageOp::Append {
                account: ACCOUNT.into(),
                name: "INBOX".into(),
                messages,
            })
            .unwrap();
    }
    println!(
        "{n} messages appended in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let Ok(StorageReply::Opened(snapshot)) = store.execute(StorageOp::Open {
        account: ACCOUNT.into(),
        name: "INBOX".into(),
        read_only: false,
    }) else {
        panic!("not opened")
    };
    let all: Vec<Uid> = snapshot.uids.to_vec();
    let every = || uids(&all);
    let cases: Vec<(&str, Program)> = vec![
        (
            "5,000 x OR 1:* 1:*",
            Box::new(|| {
                Query::And(
                    (0..5_000)
                        .map(|_| Query::Or(Box::new(every()), Box::new(every())))
                        .collect(),
                )
            }),
        ),
        (
            "2,000 x 1:* (AND)",
            Box::new(|| Query::And((0..2_000).map(|_| every()).collect())),
        ),
        (
            "4,000 x NOT TEXT zzN",
            Box::new(|| {
                Query::And(
                    (0..4_000)
                        .map(|i| Query::Not(Box::new(Query::Text(format!("zz{i}")))))
                        .collect(),
                )
            }),
        ),
        (
            "4,000 x NOT TEXT zN",
            Box::new(|| {
                Query::And(
                    (0..4_000)
                        .map(|i| Query::Not(Box::new(Query::Text(format!("z{}", i % 10)))))
                        .collect(),
                )
            }),
        ),
        (
            "TEXT the (every text)",
            Box::new(|| Query::Text("the".into())),
        ),
        ("TEXT zq (scan)", Box::new(|| Query::Text("zq".into()))),
        (
            "40 x NOT BODY zN (scan)",
            Box::new(|| {
                Query::And(
                    (0..40)
                        .map(|i| Query::Not(Box::new(Query::Body(format!("z{}", i % 10)))))
                        .collect(),
                )
            }),
        ),
    ];
    for (what, build) in cases {
        let t = Instant::now();
        let query = build();
        let built = t.elapsed();
        let reply = store.execute(StorageOp::Search {
            account: ACCOUNT.into(),
            mailbox: snapshot.id,
            uids: all.clone(),
            query,
        });
        let outcome = match reply {
            Ok(StorageReply::Found(f)) => format!("{} found", f.len()),
            Err(e) => format!("refused: {e}"),
            Ok(other) => format!("{other:?}"),
        };
        println!(
            "{what:<24} query built in {:>8.1} ms, searched in {:>9.1} ms: {outcome}",
            built.as_secs_f64() * 1000.0,
            (t.elapsed() - built).as_secs_f64() * 1000.0
        );
    }
}

/// `1:*` as the session resolves it: one range from the first UID to the last.
fn uids(all: &[Uid]) -> Query {
    Query::Uids(UidSet::from_ranges([(
        all.first().copied().unwrap_or(1),
        all.last().copied().unwrap_or(1),
    )]))
}
