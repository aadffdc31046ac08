//! Decides where message bodies live: SQLite blobs in the account database, or
//! content-addressed files beside it. Each variant stores the same messages durably (WAL,
//! `synchronous=FULL`; files fsync'd with their directory before the row commits) and reads
//! them back. Run with `cargo bench -p tern-store-sqlite --bench blobs`; figures are recorded
//! in the crate docs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

fn open(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS messages(uid INTEGER PRIMARY KEY, size INTEGER, body INTEGER);
         CREATE TABLE IF NOT EXISTS contents(id INTEGER PRIMARY KEY, data BLOB NOT NULL);",
    )
    .unwrap();
    c
}

fn body(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"abcdefghijklmnopqrstuvwxyz \r\n"[(x % 29) as usize]
        })
        .collect()
}

fn append_blob(c: &mut Connection, batch: &[Vec<u8>]) {
    let tx = c.transaction().unwrap();
    for data in batch {
        tx.prepare_cached("INSERT INTO contents(data) VALUES (?1)")
            .unwrap()
            .execute([data])
            .unwrap();
        let id = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO messages(size, body) VALUES (?1, ?2)")
            .unwrap()
            .execute(params![data.len() as i64, id])
            .unwrap();
    }
    tx.commit().unwrap();
}

fn append_file(c: &mut Connection, dir: &Path, batch: &[Vec<u8>], next: &mut u64) {
    let mut ids = Vec::new();
    for data in batch {
        *next += 1;
        let tmp = dir.join(format!("tmp.{next}"));
        let mut f = File::create(&tmp).unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
        fs::rename(&tmp, dir.join(format!("{next:016x}"))).unwrap();
        ids.push(*next);
    }
    File::open(dir).unwrap().sync_all().unwrap();
    let tx = c.transaction().unwrap();
    for (data, id) in batch.iter().zip(ids) {
        tx.prepare_cached("INSERT INTO messages(size, body) VALUES (?1, ?2)")
            .unwrap()
            .execute(params![data.len() as i64, id as i64])
            .unwrap();
    }
    tx.commit().unwrap();
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>9.0}/s", n as f64 / d.as_secs_f64())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("size      batch | blob append   file append | blob read    file read");
    for (size, count) in [
        (2_000, 400),
        (20_000, 400),
        (64_000, 300),
        (128_000, 200),
        (200_000, 200),
        (2_000_000, 40),
    ] {
        for batch in [1usize, 10] {
            let root = tempfile::tempdir().unwrap();
            let files = root.path().join("blobs");
            fs::create_dir(&files).unwrap();
            let mut a = open(&root.path().join("a.sqlite"));
            let mut b = open(&root.path().join("b.sqlite"));
            let bodies: Vec<Vec<u8>> = (0..count).map(|i| body(size, i as u64)).collect();

            let t = Instant::now();
            for chunk in bodies.chunks(batch) {
                append_blob(&mut a, chunk);
            }
            let blob_append = t.elapsed();

            let t = Instant::now();
            let mut next = 0;
            for chunk in bodies.chunks(batch) {
                append_file(&mut b, &files, chunk, &mut next);
            }
            let file_append = t.elapsed();

            let t = Instant::now();
            let mut total = 0;
            for i in 0..count {
                let id = (i * 7919 % count + 1) as i64;
                let d: Vec<u8> = a
                    .prepare_cached("SELECT data FROM contents WHERE id = ?1")
                    .unwrap()
                    .query_row([id], |r| r.get(0))
                    .unwrap();
                total += d.len();
            }
            let blob_read = t.elapsed();
            let t = Instant::now();
            for i in 0..count {
                let id = (i * 7919 % count + 1) as u64;
                let _size: i64 = b
                    .prepare_cached("SELECT size FROM messages WHERE body = ?1")
                    .unwrap()
                    .query_row([id as i64], |r| r.get(0))
                    .unwrap();
                total += fs::read(files.join(format!("{id:016x}"))).unwrap().len();
            }
            let file_read = t.elapsed();
            assert_eq!(total, 2 * size * count);
            println!(
                "{size:>9} {batch:>5} | {} {} | {} {}",
                rate(count, blob_append),
                rate(count, file_append),
                rate(count, blob_read),
                rate(count, file_read)
            );
        }
    }
}
