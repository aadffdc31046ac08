//! The store battery (`tern-store-kit`) on the SQLite store, with the capabilities a durable
//! store has: restarts and crashes on the same folder, a configuration varied per history
//! (the size above which bodies go to files; the background indexer paused, so SEARCH must be
//! exact on bodies not indexed yet, or racing the requests), settling (everything queued is
//! indexed at once, so searches also go through the FTS index), and SQLite's and FTS5's own
//! integrity checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use tern_core::store::MailStore;
use tern_store_kit::Backend;
use tern_store_sqlite::SqliteStore;

tern_store_kit::battery!(Sqlite::default());

/// The folders of the current history (a crash adds one) and how its stores are configured.
#[derive(Default)]
struct Sqlite {
    dirs: Vec<tempfile::TempDir>,
    /// The running store, for the integrity check.
    store: Option<Arc<SqliteStore>>,
    /// Inline limit and background indexing for this history; defaults when `None`.
    config: Option<(usize, bool)>,
}

impl Sqlite {
    fn open(&mut self, root: &Path) -> Arc<dyn MailStore> {
        let mut store = SqliteStore::open(root).expect("open store");
        if let Some((inline_limit, background)) = self.config {
            store.set_inline_limit(inline_limit);
            store.set_background_indexing(background);
        }
        let store = Arc::new(store);
        self.store = Some(store.clone());
        store
    }

    fn last_dir(&self) -> &Path {
        self.dirs.last().expect("a store folder").path()
    }
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
    fn fresh(&mut self, variant: Option<u64>) -> Arc<dyn MailStore> {
        self.store = None;
        self.dirs.clear();
        // Small and varied, so both body paths (inline and file) are exercised; half the
        // histories keep every body queued for the indexer, half race it.
        self.config = variant.map(|v| (300 + (v % 3701) as usize, (v >> 32) % 2 == 0));
        self.dirs
            .push(tempfile::tempdir().expect("temporary folder"));
        let root = self.last_dir().to_path_buf();
        self.open(&root)
    }

    fn can_restart(&self) -> bool {
        true
    }

    fn restart(&mut self, running: Arc<dyn MailStore>) -> Arc<dyn MailStore> {
        // Both handles go, so the folder's lock is free again.
        drop(running);
        self.store = None;
        let root = self.last_dir().to_path_buf();
        self.open(&root)
    }

    fn can_crash(&self) -> bool {
        true
    }

    fn crash(&mut self, running: Arc<dyn MailStore>) -> Arc<dyn MailStore> {
        // The files as the operating system holds them now (what a killed process leaves:
        // every acknowledged commit, nothing flushed on the way out); the running store is
        // then dropped without being asked to close anything.
        let new = tempfile::tempdir().expect("temporary folder");
        copy_dir(self.last_dir(), new.path()).expect("copy store folder");
        drop(running);
        self.store = None;
        let root = new.path().to_path_buf();
        self.dirs.push(new);
        self.open(&root)
    }

    fn settle(&mut self, account: &str) {
        // Indexes every queued body now, paused indexer or not, so the kit's searches also run
        // through the FTS index (its histories end within the indexer's 2 s settle time).
        if let Some(store) = &self.store {
            store.index_now(account).expect("index now");
        }
    }

    fn check(&mut self, account: &str) -> Result<(), String> {
        match &self.store {
            Some(store) => store.check(account).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn probe_every(&self) -> usize {
        // Reading every mailbox after every step costs more than the steps on disk.
        4
    }
}
