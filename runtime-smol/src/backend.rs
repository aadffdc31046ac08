//! Executes the core's storage requests off the connection tasks, and tells connections when
//! a mailbox of their account changed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tern_core::sasl::username_key;
use tern_core::store::{Changed, MailboxId};
use tern_core::{AuthOutcome, Protocol, StorageError, StorageOp, StorageReply, StorageResult};
use tern_store_sqlite::SqliteStore;

use crate::directory::Directory;
use crate::guard::AuthGuard;
use crate::limits::ConnectionSlot;

/// Connections waiting to hear about changes, by account.
type Watchers = HashMap<String, Vec<(u64, smol::channel::Sender<MailboxId>)>>;

/// The connection a request comes from, for the login defences.
#[derive(Debug)]
pub struct Client {
    pub peer: SocketAddr,
    pub protocol: Protocol,
    /// Its share of the connection limits; a login adds the account to it.
    pub slot: ConnectionSlot,
    /// Set once the connection has ended: a SEARCH still running for it stops (the store
    /// asks as it goes), instead of spending CPU and the account's lock on an answer nobody
    /// will read.
    pub gone: AtomicBool,
}

impl Client {
    /// Marks the connection as ended.
    pub fn leave(&self) {
        self.gone.store(true, Ordering::Relaxed);
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }
}

/// What storage requests run against. Shared by every connection.
pub struct Backend {
    directory: Directory,
    guard: AuthGuard,
    store: SqliteStore,
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
    pub fn new(directory: Directory, guard: AuthGuard, store: SqliteStore) -> Arc<Backend> {
        Arc::new(Backend {
            directory,
            guard,
            store,
            watchers: Mutex::new(HashMap::new()),
            next_watcher: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Closes every account database (checkpointing its log) at shutdown.
    pub fn close(&self) {
        self.store.close_all();
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
    ///
    /// The pool's task is returned as is, for the connection to await (or detach): wrapping
    /// it in a task of another executor would add a thread hand-off to every request, which
    /// measurably slowed POP3 RETR (`scripts/bench-vs-dovecot.sh`).
    pub fn execute(
        self: Arc<Self>,
        op: StorageOp,
        client: Arc<Client>,
    ) -> smol::Task<StorageResult> {
        smol::unblock(move || self.execute_blocking(op, &client))
    }

    /// Runs a request on the calling (executor) thread when it is a short read and the store
    /// is free at this instant; otherwise hands the request back for [`Backend::execute`].
    ///
    /// A POP3 RETR or an IMAP NOOP is tens of microseconds of work from the page cache; the
    /// two thread hand-offs of the blocking pool cost more than that (they were most of the
    /// CPU time of single-client RETR in `scripts/bench-vs-dovecot.sh`). The store decides
    /// what is quick (nothing that writes or may scan a mailbox); password checks never are;
    /// and the account's lock is only tried, never waited for, so an executor thread never
    /// sits behind another request.
    pub fn try_inline(&self, op: StorageOp) -> Result<StorageResult, StorageOp> {
        // Logins are this backend's business (directory, password hashing), never inline.
        if matches!(
            op,
            StorageOp::Authenticate { .. } | StorageOp::ScramLookup { .. }
        ) {
            return Err(op);
        }
        let (reply, changes) = self.store.try_execute_shared(op, unix_now())?;
        self.notify(&changes);
        Ok(reply)
    }

    fn execute_blocking(&self, op: StorageOp, client: &Client) -> StorageResult {
        match op {
            StorageOp::Authenticate { username, password } => {
                return self.authenticate(&username, password.expose(), client);
            }
            StorageOp::ScramLookup { username } => return self.scram(&username, client),
            _ => {}
        }
        let (reply, changes) = self
            .store
            .execute_interruptible(op, unix_now(), &|| client.is_gone());
        self.notify(&changes);
        reply
    }

    /// Checks a login against the failure counters, then the password, then the account's
    /// connection limit. Refusals are `Unavailable` (IMAP `NO [UNAVAILABLE]`, POP3
    /// `-ERR [SYS/TEMP]`), or `InUse` for a POP3 account already in use; neither counts as a
    /// failed login.
    fn authenticate(&self, username: &str, password: &[u8], client: &Client) -> StorageResult {
        let key = username_key(username).ok();
        let ip = client.peer.ip();
        if let Err(blocked) = self.guard.check(ip, key.as_deref(), Instant::now()) {
            tracing::info!(peer = %client.peer, user = %username, reason = %blocked, "login refused without checking the password");
            return Err(StorageError::Unavailable(blocked.to_string()));
        }
        let outcome = self.directory.verify(username, password);
        if let AuthOutcome::Accepted { account } = &outcome {
            let account_key = username_key(account).unwrap_or_else(|_| account.to_lowercase());
            if !client.slot.claim_account(client.protocol, &account_key) {
                tracing::info!(peer = %client.peer, user = %account, protocol = ?client.protocol, "login refused: the account has as many connections as allowed");
                return Err(match client.protocol {
                    Protocol::Pop3 => StorageError::InUse,
                    _ => StorageError::Unavailable("too many connections for this account".into()),
                });
            }
        }
        Ok(StorageReply::Authenticated(outcome))
    }

    /// SCRAM keys and a fresh server nonce; blocked clients are refused before any work, as
    /// for a password check.
    fn scram(&self, username: &str, client: &Client) -> StorageResult {
        use rand_core::RngCore;
        let key = username_key(username).ok();
        if let Err(blocked) = self
            .guard
            .check(client.peer.ip(), key.as_deref(), Instant::now())
        {
            tracing::info!(peer = %client.peer, user = %username, reason = %blocked, "SCRAM refused without a lookup");
            return Err(tern_core::StorageError::Unavailable(blocked.to_string()));
        }
        let lookup = self.directory.scram(username);
        let mut entropy = [0u8; 18];
        rand_core::OsRng.fill_bytes(&mut entropy);
        Ok(StorageReply::Scram {
            account: lookup.account,
            credentials: lookup.credentials,
            nonce: tern_core::sasl::ServerNonce::from_entropy(&entropy),
        })
    }

    /// Counts a failed login; the connection calls this on the session's `AuthFailed` event,
    /// so every mechanism (including ones verified inside the core, like SCRAM) is counted.
    pub fn login_failed(&self, client: &Client, username: &str) {
        let key = username_key(username).ok();
        self.guard
            .record_failure(client.peer.ip(), key.as_deref(), Instant::now());
    }

    /// Records a successful login (the session's `LoggedIn` event).
    pub fn logged_in(&self, client: &Client, account: &str) {
        let key = username_key(account).unwrap_or_else(|_| account.to_lowercase());
        self.guard
            .record_success(client.peer.ip(), &key, Instant::now());
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

/// The store takes wall-clock time from its driver: default internal dates and SEARCH
/// OLDER/YOUNGER.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
