//! [`Driven`]: a [`MailStore`] driven the way the server drives it, seen as the synchronous
//! [`Store`] the kit's checks and `tern_core::drive::pump` use. It holds the clock that goes
//! with each request and collects the change notices the store publishes. Logins never reach
//! it: sessions ask a directory (`tern_core::directory`) for them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use tern_core::store::{ChangeSink, Changed, MailStore, StorageOp};
use tern_core::{MemStore, StorageResult, Store};

/// The change notices a store published, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<Changed>>);

impl ChangeSink for Recorder {
    fn changed(&self, change: &Changed) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(change.clone());
    }
}

/// A store under test, its clock and its published changes.
pub struct Driven {
    store: Arc<dyn MailStore>,
    now: i64,
    changes: Arc<Recorder>,
}

impl std::fmt::Debug for Driven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driven")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Driven {
    /// Subscribes to `store`'s changes. The clock starts where `MemStore`'s does.
    pub fn new(store: Arc<dyn MailStore>) -> Driven {
        let changes = Arc::new(Recorder::default());
        store.subscribe(changes.clone());
        Driven {
            store,
            now: MemStore::new().now(),
            changes,
        }
    }

    /// Hands the store to `f` (a restart or a crash) and goes on, with the same clock, over the store `f` returns.
    pub fn replace_with(&mut self, f: impl FnOnce(Arc<dyn MailStore>) -> Arc<dyn MailStore>) {
        // `f` must hold the only handle (a restart may need the old store gone first); the
        // placeholder is never used.
        let old = std::mem::replace(&mut self.store, crate::reference());
        let store = f(old);
        let changes = Arc::new(Recorder::default());
        store.subscribe(changes.clone());
        self.store = store;
        self.changes = changes;
    }

    /// Sets the wall clock sent with the following requests (Unix seconds).
    pub fn set_now(&mut self, unix: i64) {
        self.now = unix;
    }

    /// The wall clock sent with requests.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The store itself.
    pub fn store(&self) -> &Arc<dyn MailStore> {
        &self.store
    }
}

impl Store for Driven {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        self.store.execute(op, self.now, &|| false)
    }

    /// Each mailbox once, in the order first announced.
    fn take_changes(&mut self) -> Vec<Changed> {
        let all = std::mem::take(
            &mut *self
                .changes
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut seen = HashSet::new();
        all.into_iter().filter(|c| seen.insert(c.clone())).collect()
    }
}
