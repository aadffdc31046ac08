//! How LZ4 and zstd pack an account's stored values: reads every inline body (`contents`) and
//! search text (`texts`) of an existing account database, unpacks them, and reports for each
//! codec the packed size and the time to pack and unpack a value, then the table size each
//! choice gives at 4, 8 and 16 KiB pages (values plus SQLite's unused space, from `dbstat`).
//! The figures behind `tern_core::store::stored::Packing`.
//!
//! `cargo run --release -p tern-store-sqlite --example packing -- PATH/index.sqlite`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tern_core::store::stored::{pack, unpack, Packing, Zstd};

fn load(c: &rusqlite::Connection, table: &str) -> Vec<Vec<u8>> {
    let mut s = c.prepare(&format!("SELECT data FROM {table}")).unwrap();
    let rows = s.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    let mut z = Zstd::default();
    rows.map(|v| unpack(v.unwrap(), &mut z).expect("unpack").to_vec())
        .collect()
}

/// Bytes per value in a fresh table of these values at this page size.
fn table_size(values: &[Vec<u8>], page: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("t.sqlite")).unwrap();
    db.execute_batch(&format!(
        "PRAGMA page_size = {page}; PRAGMA journal_mode = WAL; \
         CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    ))
    .unwrap();
    let tx = db.unchecked_transaction().unwrap();
    for (i, v) in values.iter().enumerate() {
        tx.execute(
            "INSERT INTO t VALUES (?1, ?2)",
            rusqlite::params![i as i64, v],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let size: i64 = db
        .query_row("SELECT SUM(pgsize) FROM dbstat WHERE name = 't'", [], |r| {
            r.get(0)
        })
        .unwrap();
    size as usize / values.len().max(1)
}

fn main() {
    let path = std::env::args().nth(1).expect("path of an index.sqlite");
    let c = rusqlite::Connection::open(path).unwrap();
    for table in ["contents", "texts"] {
        let values = load(&c, table);
        let n = values.len().max(1);
        let raw: usize = values.iter().map(Vec::len).sum();
        println!("{table}: {n} values, {} bytes each raw", raw / n);
        let mut z = Zstd::default();
        for packing in [Packing::Fast, Packing::Dense] {
            let t = Instant::now();
            let packed: Vec<Vec<u8>> = values.iter().map(|v| pack(v, packing, &mut z)).collect();
            let packing_time = t.elapsed();
            let t = Instant::now();
            for p in &packed {
                std::hint::black_box(unpack(p.clone(), &mut z).unwrap());
            }
            let unpacking_time = t.elapsed();
            let size: usize = packed.iter().map(Vec::len).sum();
            let pages: Vec<String> = [4096, 8192, 16384]
                .iter()
                .map(|&p| format!("{} KiB pages {} B", p / 1024, table_size(&packed, p)))
                .collect();
            println!(
                "  {packing:?}: {} B ({:.3}), pack {:.1} µs, unpack {:.1} µs; {}",
                size / n,
                size as f64 / raw.max(1) as f64,
                packing_time.as_secs_f64() * 1e6 / n as f64,
                unpacking_time.as_secs_f64() * 1e6 / n as f64,
                pages.join(", ")
            );
        }
    }
}
