//! Where the bytes go: appends N generated messages (env `N`, default 3,000) in batches of
//! 100, closes the store and lists each table's and index's share from SQLite's `dbstat`.
//! `cargo run --release -p tern-store-sqlite --example space`
#![allow(clippy::unwrap_used)]
use tern_core::store::{NewMessage, StorageOp};
use tern_core::Store;
use tern_store_kit::gen;
fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let dir = tempfile::tempdir().unwrap();
    let mut store = tern_store_sqlite::SqliteStore::open(dir.path()).unwrap();
    let mut rng = gen::Rng::new(2026);
    let mut raw = 0;
    let mut batch = Vec::new();
    for i in 0..n {
        let data = gen::message(&mut rng, gen::REALISTIC);
        raw += data.len();
        batch.push(NewMessage {
            flags: vec![],
            internal_date: None,
            data,
        });
        if batch.len() == 100 || i == n - 1 {
            store
                .execute(StorageOp::Append {
                    account: "a".into(),
                    name: "INBOX".into(),
                    messages: std::mem::take(&mut batch),
                })
                .unwrap();
        }
    }
    let path = store.account_dir("a").unwrap().join("index.sqlite");
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let mut s = c
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .unwrap();
    let rows = s
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    println!("raw {:.1} MB, {} bytes/msg", raw as f64 / 1e6, raw / n);
    for r in rows {
        let (name, size) = r.unwrap();
        println!(
            "{name:<24} {:>8.1} MB {:>7} B/msg",
            size as f64 / 1e6,
            size as usize / n
        );
    }
}
