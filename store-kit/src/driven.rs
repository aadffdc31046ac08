//! [`Driven`]: a [`MailStore`] driven the way the server drives it, seen as the synchronous
//! [`Store`] the kit's checks and `tern_core::drive::pump` use. It holds the clock that goes
//! with each request, collects the change notices the store publishes, and answers the
//! directory's requests (logins) itself, as the server's directory does: they are not the
//! store's business.

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

/// A store under test, its clock, its published changes and the users who may log in.
pub struct Driven {
    store: Arc<dyn MailStore>,
    now: i64,
    changes: Arc<Recorder>,
    /// Answers logins (the users are added with [`Driven::add_user`]); never sees mail.
    directory: MemStore,
}

impl std::fmt::Debug for Driven {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driven")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Whether a request is the directory's (a login) rather than the mail store's. The only
/// place the kit names these requests.
fn for_directory(op: &StorageOp) -> bool {
    matches!(
        op,
        StorageOp::Authenticate { .. }
            | StorageOp::ScramLookup { .. }
            | StorageOp::ClaimAccount { .. }
    )
}

impl Driven {
    /// Subscribes to `store`'s changes. The clock starts where `MemStore`'s does.
    pub fn new(store: Arc<dyn MailStore>) -> Driven {
        let changes = Arc::new(Recorder::default());
        store.subscribe(changes.clone());
        let directory = MemStore::new();
        Driven {
            store,
            now: directory.now(),
            changes,
            directory,
        }
    }

    /// Hands the store to `f` (a restart or a crash) and goes on, with the same clock and
    /// users, over the store `f` returns.
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

    /// Lets this user log in with this password.
    pub fn add_user(&mut self, name: &str, password: &str) {
        self.directory.add_user(name, password);
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
        if for_directory(&op) {
            return self.directory.execute(op);
        }
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
