//! The storage contract the server drives: [`MailStore`], implemented by every backend (the
//! embedded SQLite store, [`SharedMemStore`] here, a shared database later), and
//! [`ChangeSink`], through which a backend tells the server what changed.
//!
//! A session never calls storage: it emits one [`StorageOp`] at a time and continues when the
//! reply comes back (see [`crate::Output::Storage`]). The driver runs each request against a
//! `MailStore`, from any thread: the contract is `Send + Sync` and takes `&self`, so a backend
//! decides its own locking (per account, per connection pool, …).
//!
//! What a backend must honour:
//! - **Time** comes with each request (`now`, Unix seconds): default internal dates, SEARCH
//!   OLDER/YOUNGER, new UIDVALIDITYs. A backend never reads a clock for protocol answers.
//! - **Durability**: a reply to a write means the change is durable; how a backend gets there
//!   (group commit, a writer per account, a background index queue) is its own business. A
//!   `\Recent` claim need only survive a crash of the process, not of the machine.
//! - **Exactness**: every reply equals [`MemStore`]'s for the same history (UIDVALIDITY values
//!   and account keys aside); SEARCH may narrow through an index but decides with the core's
//!   evaluator.
//! - **Object identifiers** (RFC 8474): numbers for mailboxes, messages and conversations that
//!   are never reused and follow their objects through RENAME, COPY and MOVE, a conversation
//!   decided by [`crate::mail::thread`] when a message is stored, and a random key per
//!   account kept as long as the account; the session makes the strings
//!   ([`super::objectid`]). `docs/storage-contract.md` has the rules.
//! - **Errors** are [`StorageError`](super::StorageError) reasons; the session chooses the
//!   words clients see.
//! - **Names** are all alike to a backend: the rules about INBOX are decided above it
//!   ([`super::rules`]), and a new account gets the mailboxes of the [`super::AccountTemplate`]
//!   the backend was built with.
//! - **Changes** go to every subscribed [`ChangeSink`] once they are committed: "this account's
//!   mailbox changed". In one process that is a function call; across nodes it is the
//!   database's own notification mechanism. A missed notice costs a session latency, never
//!   correctness: sessions catch up by MODSEQ at their next command.
//! - **Usage** ([`StorageOp::Usage`]) is answered from totals kept
//!   per mailbox, at a cost bounded by the account's mailboxes, and creates no account.
//! - **Leases**: the POP3 maildrop lock ([`StorageOp::LockMaildrop`]) must die with the
//!   process (or node) that took it.
//! - **No logins**: users, passwords, SCRAM keys and connection limits are the directory's
//!   ([`crate::directory`]); a backend never sees an authentication request.

use std::sync::{Arc, Mutex, PoisonError};

use super::{Changed, MemStore, StorageOp, StorageResult, Store, StoreLimits};

/// Where a backend announces committed changes. Called from whatever thread committed them
/// (or received them from another node); must not block.
pub trait ChangeSink: Send + Sync {
    /// `change` is committed and visible to every later request.
    fn changed(&self, change: &Changed);
}

/// Where [`MailStore::try_submit`] delivers a reply: called once, from any thread; must not
/// block.
pub type ReplySink = Box<dyn FnOnce(StorageResult) + Send>;

/// A mail store as the server drives it. See the module docs for what it must honour.
pub trait MailStore: Send + Sync {
    /// Runs one request at wall-clock time `now` (Unix seconds) and replies once any change
    /// it made is durable. `abandoned` tells whether anyone still waits for the reply: a
    /// long request (a SEARCH over a large mailbox) may ask it as it goes and stop early.
    fn execute(&self, op: StorageOp, now: i64, abandoned: &dyn Fn() -> bool) -> StorageResult;

    /// Runs `op` at once if that is cheap and needs no waiting (a read served from memory, a
    /// lock that is free), so a driver can answer it on the connection's own thread; otherwise
    /// hands it back untouched for [`MailStore::execute`] on a thread that may wait.
    fn try_execute_quick(&self, op: StorageOp, now: i64) -> Result<StorageResult, StorageOp> {
        let _ = now;
        Err(op)
    }

    /// Queues `op` for a thread of the backend's own (a writer per busy account, say) and
    /// returns at once; `reply` is called with the reply, from any thread, once any change is
    /// durable. A driver then needs no thread of its own to wait on the request. A backend
    /// without such threads, or one that will not queue this request (a SEARCH that should be
    /// able to stop early, an account not open yet), hands both back for
    /// [`MailStore::execute`] on a thread that may wait. Never block in it.
    // The request comes back as it went in, on the hot path: boxing it would allocate per
    // request for nothing.
    #[allow(clippy::result_large_err)]
    fn try_submit(
        &self,
        op: StorageOp,
        now: i64,
        reply: ReplySink,
    ) -> Result<(), (StorageOp, ReplySink)> {
        let _ = now;
        Err((op, reply))
    }

    /// Adds a subscriber for committed changes.
    fn subscribe(&self, sink: Arc<dyn ChangeSink>);

    /// Makes everything tidy at rest (checkpoints, closed files) at shutdown. Every reply
    /// already given is durable whether or not this runs.
    fn close(&self) {}
}

/// The subscribers of a backend, for backends to embed.
#[derive(Default)]
pub struct Sinks {
    sinks: Mutex<Vec<Arc<dyn ChangeSink>>>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks").finish_non_exhaustive()
    }
}

impl Sinks {
    /// Adds a subscriber.
    pub fn add(&self, sink: Arc<dyn ChangeSink>) {
        self.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sink);
    }

    /// Tells every subscriber about each change, once each.
    pub fn publish(&self, changes: &[Changed]) {
        if changes.is_empty() {
            return;
        }
        let sinks = self
            .sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut seen = Vec::with_capacity(changes.len());
        for change in changes {
            if seen.contains(&change) {
                continue;
            }
            seen.push(change);
            for sink in &sinks {
                sink.changed(change);
            }
        }
    }
}

/// [`MemStore`] behind the contract: everything in memory, nothing survives the process. For
/// tests, demonstrations and the conformance runner's peers; the server offers it as
/// `[storage] backend = "memory"`.
#[derive(Debug, Default)]
pub struct SharedMemStore {
    inner: Mutex<MemStore>,
    sinks: Sinks,
}

impl SharedMemStore {
    /// An empty store.
    pub fn new() -> SharedMemStore {
        SharedMemStore::default()
    }

    /// An empty store with these bounds.
    pub fn with_limits(limits: StoreLimits) -> SharedMemStore {
        let store = SharedMemStore::default();
        store
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_limits(limits);
        store
    }
}

impl MailStore for SharedMemStore {
    fn execute(&self, op: StorageOp, now: i64, _abandoned: &dyn Fn() -> bool) -> StorageResult {
        let (reply, changes) = {
            let mut store = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            store.set_now(now);
            let reply = store.execute(op);
            (reply, store.take_changes())
        };
        self.sinks.publish(&changes);
        reply
    }

    fn subscribe(&self, sink: Arc<dyn ChangeSink>) {
        self.sinks.add(sink);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{NewMessage, StorageReply};

    struct Recorder(Mutex<Vec<Changed>>);

    impl ChangeSink for Recorder {
        fn changed(&self, change: &Changed) {
            self.0.lock().unwrap().push(change.clone());
        }
    }

    #[test]
    fn the_memory_store_publishes_committed_changes() {
        let store = SharedMemStore::new();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
        store.subscribe(recorder.clone());
        let append = StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: bytes::Bytes::from_static(b"Subject: x\r\n\r\nbody\r\n"),
            }],
        };
        let reply = store.execute(append, 1_800_000_000, &|| false).unwrap();
        let StorageReply::Appended { mailbox, .. } = reply else {
            panic!("{reply:?}");
        };
        // Reads change nothing and announce nothing.
        let status = StorageOp::Status {
            account: "alice".into(),
            name: "INBOX".into(),
        };
        let Ok(StorageReply::Status(status)) = store.execute(status, 1_800_000_001, &|| false)
        else {
            panic!("STATUS failed");
        };
        // The change carries the MODSEQ a session's view reaches once it has seen it.
        assert_eq!(
            *recorder.0.lock().unwrap(),
            vec![Changed {
                account: "alice".into(),
                mailbox,
                modseq: status.highest_modseq,
            }]
        );
    }
}
