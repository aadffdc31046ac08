//! The model-based property of issue 9 on the durable store: the same generated histories as
//! `core/tests/model_histories.rs` (the model is included from `core/tests/model/`), plus
//! crashes at random steps. A crash copies the store's folder as it is on disk at that
//! moment (what a killed process leaves: every acknowledged commit is there, nothing is
//! flushed on the way out), drops the running store, and reopens the copy; then the whole
//! store must equal the model, i.e. exactly the acknowledged prefix of the history survived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../core/tests/model/mod.rs"]
mod model;

use std::path::Path;

use model::{Backend, Config, Shape};
use tern_store_sqlite::SqliteStore;

/// Keeps the folders of the current history alive; a new history drops them.
#[derive(Default)]
struct Sqlite {
    dirs: Vec<tempfile::TempDir>,
}

fn open(root: &Path) -> SqliteStore {
    SqliteStore::open(root).expect("open store")
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

impl Backend for Sqlite {
    type S = SqliteStore;

    fn fresh(&mut self) -> SqliteStore {
        self.dirs.clear();
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = open(dir.path());
        self.dirs.push(dir);
        store
    }

    fn set_now(store: &mut SqliteStore, unix: i64) {
        store.set_now(unix);
    }

    fn crash(&mut self, store: &mut SqliteStore) -> bool {
        let Some(old) = self.dirs.last() else {
            return false;
        };
        let new = tempfile::tempdir().expect("temporary folder");
        // The files as the operating system holds them now; the running store is then
        // dropped without being asked to close anything.
        copy_dir(old.path(), new.path()).expect("copy store folder");
        *store = open(new.path());
        self.dirs.push(new);
        true
    }

    fn probe_every(&self) -> usize {
        // Reading every mailbox after every step costs more than the steps on disk.
        4
    }
}

#[test]
fn imap_and_pop3_histories_with_crashes() {
    model::check(
        &mut Sqlite::default(),
        &Config {
            name: "sqlite_imap_and_pop3_histories_with_crashes",
            cases: 150,
            shape: Shape {
                max_steps: 200,
                imap: 3,
                pop3: 1,
                crash: true,
            },
        },
    );
}

#[test]
fn imap_histories_with_crashes() {
    model::check(
        &mut Sqlite::default(),
        &Config {
            name: "sqlite_imap_histories_with_crashes",
            cases: 150,
            shape: Shape {
                max_steps: 200,
                imap: 2,
                pop3: 0,
                crash: true,
            },
        },
    );
}

/// DELETE of a mailbox with children removed its messages without tombstones or MODSEQ
/// (mirroring MemStore's old behaviour); after CREATE of the name, a session that still had it
/// selected kept the vanished messages and HIGHESTMODSEQ did not move.
#[test]
fn delete_with_children_then_create_tells_the_selected_session() {
    use model::history::{Cmd, NewMsg};
    use model::Step;
    let cmd = |c: usize, cmd: Cmd| Step::Cmd { c, cmd };
    let steps = [
        Step::Open { c: 0, rev2: false },
        Step::Open { c: 1, rev2: false },
        cmd(0, Cmd::Create(4)),
        cmd(
            0,
            Cmd::Append(
                3,
                vec![NewMsg {
                    body: 0,
                    flags: Vec::new(),
                    date: None,
                }],
            ),
        ),
        cmd(1, Cmd::Select(3)),
        cmd(0, Cmd::Delete(3)),
        cmd(0, Cmd::Create(3)),
        cmd(1, Cmd::Noop),
        cmd(0, Cmd::Status(3)),
    ];
    let shape = Shape {
        max_steps: steps.len(),
        imap: 2,
        pop3: 0,
        crash: true,
    };
    if let Err(e) = model::replay(&mut Sqlite::default(), &shape, &steps) {
        panic!("{e}");
    }
}
