//! Executes the core's storage requests off the connection tasks, and tells connections when
//! a mailbox of their account changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tern_core::store::{Changed, MailboxId};
use tern_core::{MemStore, StorageOp, StorageReply, StorageResult, Store};

use crate::directory::Directory;

/// Connections waiting to hear about changes, by account.
type Watchers = HashMap<String, Vec<(u64, smol::channel::Sender<MailboxId>)>>;

/// What storage requests run against. Shared by every connection.
pub struct Backend {
    directory: Directory,
    store: Mutex<Box<dyn Store + Send>>,
    watchers: Mutex<Watchers>,
    next_watcher: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// A connection's subscription to change notifications; unsubscribes when dropped.
pub struct Watch {
    backend: Arc<Backend>,
    account: String,
    id: u64,
    /// Yields the ids of changed mailboxes.
    pub changes: smol::channel::Receiver<MailboxId>,
}

impl Watch {
    /// The account watched.
    pub fn account(&self) -> &str {
        &self.account
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = self
            .backend
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = watchers.get_mut(&self.account) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                watchers.remove(&self.account);
            }
        }
    }
}

impl Backend {
    pub fn new(directory: Directory) -> Arc<Backend> {
        // The durable store is a separate piece of work; until it lands, mail lives in memory.
        tracing::warn!("messages are kept in memory and are lost when the server stops");
        Arc::new(Backend {
            directory,
            store: Mutex::new(Box::new(MemStore::new())),
            watchers: Mutex::new(HashMap::new()),
            next_watcher: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Subscribes a connection to changes in its account's mailboxes.
    pub fn watch(self: &Arc<Self>, account: &str) -> Watch {
        // Bounded: a connection that falls behind misses notifications, not memory; it still
        // synchronises at its next command or IDLE keepalive.
        let (tx, rx) = smol::channel::bounded(64);
        let id = self
            .next_watcher
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(account.to_string())
            .or_default()
            .push((id, tx));
        Watch {
            backend: self.clone(),
            account: account.to_string(),
            id,
            changes: rx,
        }
    }

    /// Runs one request on smol's blocking pool, so hashing or disk work never holds up the
    /// executor threads that move other connections' bytes.
    pub async fn execute(self: Arc<Self>, op: StorageOp) -> StorageResult {
        smol::unblock(move || self.execute_blocking(op)).await
    }

    fn execute_blocking(&self, op: StorageOp) -> StorageResult {
        if let StorageOp::Authenticate { username, password } = op {
            let outcome = self.directory.verify(&username, password.expose());
            return Ok(StorageReply::Authenticated(outcome));
        }
        let (reply, changes) = {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            let reply = store.execute(op);
            (reply, store.take_changes())
        };
        self.notify(&changes);
        reply
    }

    fn notify(&self, changes: &[Changed]) {
        if changes.is_empty() {
            return;
        }
        let watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        for change in changes {
            for (_, tx) in watchers.get(&change.account).into_iter().flatten() {
                let _ = tx.try_send(change.mailbox);
            }
        }
    }
}
