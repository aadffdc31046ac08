//! What one SEARCH costs on a large mailbox: fills INBOX with N generated messages (env `N`,
//! default 100,000, in commits of 500) unless the store in `DIR` already holds them, waits
//! for the search indexer to take them all, then times `SEARCH FROM <address>` and
//! `SEARCH TEXT <rare word>` (the two searches of `scripts/bench-vs-dovecot.sh`) `REPS` times
//! each (default 50) and prints the least, median and mean time per search (the least is the
//! figure least disturbed by other work on a shared machine).
//! `DIR=/tmp/sc N=100000 cargo run --release -p tern-store-sqlite --example search_cost`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tern_core::store::query::Query;
use tern_core::store::{NewMessage, StorageOp, StorageReply};
use tern_core::Store;
use tern_store_kit::gen;
use tern_store_sqlite::SqliteStore;

const ACCOUNT: &str = "a";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("N", 100_000);
    let reps = env("REPS", 50);
    let dir = std::env::var("DIR").map_or_else(
        |_| std::env::temp_dir().join(format!("tern-search-cost-{n}")),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = SqliteStore::open(&dir).unwrap();
    let open = StorageOp::Open {
        account: ACCOUNT.into(),
        name: "INBOX".into(),
        read_only: true,
    };
    let StorageReply::Opened(snap) = store.execute(open.clone()).unwrap() else {
        panic!("not opened")
    };
    let have = snap.uids.len();
    if have < n {
        let mut rng = gen::Rng::new(2026);
        let t = Instant::now();
        let mut left = n - have;
        while left > 0 {
            let take = left.min(500);
            left -= take;
            let messages = (0..take)
                .map(|_| NewMessage {
                    flags: gen::flags(&mut rng),
                    internal_date: None,
                    data: gen::message(&mut rng, gen::REALISTIC),
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
        println!("filled {} messages in {:.1?}", n - have, t.elapsed());
    }
    let path = store.account_dir(ACCOUNT).unwrap().join("index.sqlite");
    let probe = rusqlite::Connection::open(&path).unwrap();
    let t = Instant::now();
    loop {
        let pending: i64 = probe
            .query_row("SELECT COUNT(*) FROM fts_pending", [], |r| r.get(0))
            .unwrap();
        if pending == 0 || t.elapsed() > Duration::from_secs(600) {
            println!("index pending {pending} after {:.1?}", t.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let StorageReply::Opened(snap) = store.execute(open).unwrap() else {
        panic!("not opened")
    };
    let uids = snap.uids.to_vec();
    let only = std::env::var("ONLY").unwrap_or_default();
    for (what, query) in [
        (
            "from",
            Query::Header("from".into(), "carol@music.test".into()),
        ),
        ("text", Query::Text("tk0042".into())),
    ] {
        if !only.is_empty() && only != what {
            continue;
        }
        let mut times = Vec::with_capacity(reps);
        let mut found = 0;
        for _ in 0..reps {
            let t = Instant::now();
            let StorageReply::Found(f) = store
                .execute(StorageOp::Search {
                    account: ACCOUNT.into(),
                    mailbox: snap.id,
                    uids: uids.clone(),
                    query: query.clone(),
                })
                .unwrap()
            else {
                panic!("no answer")
            };
            times.push(t.elapsed());
            found = f.len();
        }
        times.sort_unstable();
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        let mean = times.iter().sum::<Duration>() / u32::try_from(reps.max(1)).unwrap();
        let least = times.first().copied().unwrap_or_default();
        println!(
            "SEARCH {what:<5} {} messages: least {:.2} ms, median {:.2} ms, mean {:.2} ms, \
             {found} found",
            uids.len(),
            least.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e3,
        );
    }
}
