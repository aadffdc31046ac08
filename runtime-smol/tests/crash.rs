//! Crash safety of the durable store (issue: acknowledged data is durable). Several rounds:
//! concurrent clients APPEND, STORE and EXPUNGE while the server is killed with SIGKILL at a
//! random moment; after a restart every acknowledged change is there, nothing is half-present,
//! UIDs are never reused, and SQLite's integrity check passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{config_text, BIN};

fn start(dir: &Path) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.join("tern.toml"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut port = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("listening imap ") {
            let addr = rest.split(' ').next().unwrap();
            port = addr.rsplit(':').next().unwrap().parse().unwrap();
        }
        if line == "tern is ready" {
            break;
        }
    }
    assert_ne!(port, 0);
    (child, port)
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    n: u32,
}

impl Conn {
    fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut c = Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            n: 0,
        };
        c.line()?;
        c.command("LOGIN alice wonderland")?;
        c.command("SELECT INBOX")?;
        Ok(c)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.reader.read_line(&mut l)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(l)
    }

    /// Sends a command; returns the tagged line if it is OK, an error otherwise.
    fn command(&mut self, cmd: &str) -> std::io::Result<String> {
        self.n += 1;
        let tag = format!("t{}", self.n);
        self.writer
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())?;
        loop {
            let l = self.line()?;
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                return if rest.starts_with("OK") {
                    Ok(l)
                } else {
                    Err(std::io::Error::other(l))
                };
            }
        }
    }
}

/// What the clients were told succeeded.
#[derive(Default)]
struct Acked {
    /// Marker → UID, for every acknowledged APPEND.
    appended: BTreeMap<String, u32>,
    flagged: BTreeSet<u32>,
    expunged: BTreeSet<u32>,
    /// Expunges sent but not (yet) answered: the server may or may not have done them.
    expunge_sent: BTreeSet<u32>,
}

fn worker(port: u16, id: usize, round: usize, acked: Arc<Mutex<Acked>>, deadline: Instant) {
    let Ok(mut c) = Conn::open(port) else { return };
    let mut mine = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let marker = format!("r{round}-w{id}-{n}");
        let message =
            format!("X-Crash-Id: {marker}\r\nSubject: crash test\r\n\r\nbody {marker}\r\n");
        let Ok(ok) = c.command(&format!("APPEND INBOX {{{}+}}\r\n{message}", message.len())) else {
            return;
        };
        // "tN OK [APPENDUID v uid] ..."
        let uid: u32 = ok
            .split_whitespace()
            .nth(4)
            .and_then(|u| u.trim_end_matches(']').parse().ok())
            .unwrap();
        acked.lock().unwrap().appended.insert(marker, uid);
        mine.push(uid);
        if n % 3 == 0 {
            if c.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Flagged)"))
                .is_err()
            {
                return;
            }
            acked.lock().unwrap().flagged.insert(uid);
        }
        if n % 5 == 0 {
            let victim = mine.remove(0);
            acked.lock().unwrap().expunge_sent.insert(victim);
            if c.command(&format!("UID STORE {victim} +FLAGS.SILENT (\\Deleted)"))
                .is_err()
                || c.command(&format!("UID EXPUNGE {victim}")).is_err()
            {
                return;
            }
            acked.lock().unwrap().expunged.insert(victim);
        }
    }
}

#[test]
fn acknowledged_changes_survive_sigkill() {
    survive_sigkill(3);
}

/// Ten sessions writing one mailbox at once: their writes go to disk in shared group commits
/// (store-sqlite's `group.rs`), and each is still acknowledged only once it is durable.
#[test]
fn acknowledged_changes_of_ten_concurrent_writers_survive_sigkill() {
    survive_sigkill(10);
}

fn survive_sigkill(writers: usize) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tern.toml"), config_text("")).unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut max_uid_seen = 0;
    let seed = std::process::id() as u64;
    for round in 0..3 {
        let (mut child, port) = start(dir.path());
        let deadline = Instant::now() + Duration::from_secs(5);
        let workers: Vec<_> = (0..writers)
            .map(|id| {
                let acked = acked.clone();
                std::thread::spawn(move || worker(port, id, round, acked, deadline))
            })
            .collect();
        // A pseudo-random moment between 0.3 and 1.8 s into the round.
        let wait = 300
            + (seed
                .wrapping_mul(2654435761)
                .wrapping_add(round as u64 * 977)
                % 1500);
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        for w in workers {
            w.join().unwrap();
        }

        // Restart and check.
        let (mut child, port) = start(dir.path());
        let mut c = Conn::open(port).unwrap();
        c.writer
            .write_all(b"f UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Crash-Id)] RFC822.SIZE)\r\n")
            .unwrap();
        let mut present: BTreeMap<u32, (String, String)> = BTreeMap::new();
        loop {
            let l = c.line().unwrap();
            if l.starts_with("f OK") {
                break;
            }
            assert!(!l.starts_with("f "), "FETCH failed after restart: {l}");
            if let Some(at) = l.find("UID ") {
                let uid: u32 = l[at + 4..]
                    .split(|ch: char| !ch.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let flags = l
                    .split("FLAGS (")
                    .nth(1)
                    .unwrap_or("")
                    .split(')')
                    .next()
                    .unwrap_or("")
                    .to_string();
                // The header comes as a literal: read exactly its octets, then the line's end.
                let len: usize = l
                    .trim_end()
                    .rsplit('{')
                    .next()
                    .and_then(|n| n.trim_end_matches('}').parse().ok())
                    .unwrap();
                let mut header = vec![0u8; len];
                std::io::Read::read_exact(&mut c.reader, &mut header).unwrap();
                let _rest = c.line().unwrap();
                let header = String::from_utf8(header).unwrap();
                let marker = header
                    .lines()
                    .find_map(|h| h.strip_prefix("X-Crash-Id: "))
                    .unwrap_or("")
                    .to_string();
                present.insert(uid, (marker, flags));
            }
        }
        let a = acked.lock().unwrap();
        for (marker, uid) in &a.appended {
            if a.expunged.contains(uid) {
                assert!(!present.contains_key(uid), "expunged UID {uid} came back");
                continue;
            }
            if a.expunge_sent.contains(uid) && !present.contains_key(uid) {
                // Done but not acknowledged before the kill: allowed either way.
                continue;
            }
            let (found, flags) = present
                .get(uid)
                .unwrap_or_else(|| panic!("acknowledged APPEND {marker} (UID {uid}) is lost"));
            assert_eq!(found, marker, "UID {uid} holds another message");
            if a.flagged.contains(uid) {
                assert!(
                    flags.contains("\\Flagged"),
                    "acknowledged flag on {uid} is lost"
                );
            }
        }
        // Every message present can be read whole: no row without its body.
        for uid in present.keys() {
            c.command(&format!("UID FETCH {uid} BODY.PEEK[]")).unwrap();
        }
        // UIDs are never reused: a new message gets a UID above every one handed out.
        let highest = present
            .keys()
            .copied()
            .chain(a.appended.values().copied())
            .max()
            .unwrap_or(0);
        max_uid_seen = max_uid_seen.max(highest);
        drop(a);
        let msg = "Subject: after\r\n\r\nx\r\n";
        let ok = c
            .command(&format!("APPEND INBOX {{{}+}}\r\n{msg}", msg.len()))
            .unwrap();
        let new_uid: u32 = ok
            .split_whitespace()
            .nth(4)
            .and_then(|u| u.trim_end_matches(']').parse().ok())
            .unwrap();
        assert!(
            new_uid > max_uid_seen,
            "UID {new_uid} reused (highest was {max_uid_seen})"
        );
        max_uid_seen = new_uid;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let acked = acked.lock().unwrap();
    assert!(
        acked.appended.len() > 10,
        "too few operations to mean anything"
    );
    // SQLite's own consistency check on the account database.
    let folder = tern_store_sqlite::folder_name("alice").unwrap();
    let db = dir
        .path()
        .join("data/accounts")
        .join(folder)
        .join("index.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
