//! Replays the session fuzz targets' regression inputs (`core/fuzz/regressions/<target>/`,
//! crashes found by `cargo fuzz`, kept after their fix) and a few hand-made inputs through the
//! fuzz driver itself, on the stable toolchain, so that `cargo test` guards them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fuzz/fuzz_targets/driver.rs"]
mod driver;

use tern_core::Protocol;

fn replay_folder(target: &str, protocol: Protocol) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            eprintln!("replaying {}", path.display());
            driver::run(protocol, &data);
            n += 1;
        }
    }
    n
}

#[test]
fn imap_session_regressions() {
    replay_folder("session_imap", Protocol::Imap);
    // The driver itself works: a login, a fetch, a store and expunge, an IDLE, pipelined.
    for cut in [0u8, 1, 5] {
        let mut input = vec![cut];
        input.extend_from_slice(
            b"b LOGIN alice wonderland\r\nc SELECT INBOX\r\nd FETCH 1:* (FLAGS BODY[])\r\ne STORE 2 +FLAGS (\\Deleted)\r\nf EXPUNGE\r\ng IDLE\r\nDONE\r\nh LOGOUT\r\n",
        );
        driver::run(Protocol::Imap, &input);
    }
}

#[test]
fn pop3_session_regressions() {
    replay_folder("session_pop3", Protocol::Pop3);
    for cut in [0u8, 1, 3] {
        let mut input = vec![cut];
        input.extend_from_slice(
            b"CAPA\r\nUSER alice\r\nPASS wrong\r\nUSER alice\r\nPASS wonderland\r\nLIST\r\nRETR 1\r\nDELE 2\r\nQUIT\r\n",
        );
        driver::run(Protocol::Pop3, &input);
    }
}
