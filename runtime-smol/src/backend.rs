//! Executes the core's storage requests off the connection tasks, answers its directory
//! requests (logins) with the login defences in front, and tells connections when a mailbox of
//! their account changed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tern_core::sasl::username_key;
use tern_core::store::{
    ChangeSink, Changed, MailStore, MailboxId, ModSeq, ReplySink, UNKNOWN_MODSEQ,
};
use tern_core::{
    AuthOutcome, DirectoryError, DirectoryOp, DirectoryReply, DirectoryResult, Protocol,
    StorageError, StorageOp, StorageResult,
};

use crate::auth_cache::AuthCache;
use crate::checks::CheckPool;
use crate::directory::Directory;
use crate::guard::{Attempt, AttemptEnd, AuthGuard, Blocked};
use crate::limits::ConnectionSlot;
use crate::metrics::{LoginResult, Metrics};
use crate::usage::AccountSizes;

/// One connection's channel for change notices, with its subscription id and the flag that
/// says a notice was lost to a full channel.
type Watcher = (
    u64,
    smol::channel::Sender<(MailboxId, ModSeq)>,
    Arc<AtomicBool>,
);

/// Connections waiting to hear about changes, by account: the store's [`ChangeSink`].
#[derive(Default)]
struct Watchers {
    by_account: Mutex<HashMap<String, Vec<Watcher>>>,
    next: std::sync::atomic::AtomicU64,
}

impl ChangeSink for Watchers {
    fn changed(&self, change: &Changed) {
        let watchers = self
            .by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, tx, missed) in watchers.get(&change.account).into_iter().flatten() {
            // A full channel means the connection is behind: the notice is dropped, not
            // queued without bound, and the flag makes the next notice it takes count as
            // news. The second try covers a connection that emptied the channel meanwhile
            // (it would otherwise wait with the flag set and nothing to take).
            let notice = (change.mailbox, change.modseq);
            if tx.try_send(notice).is_err() {
                missed.store(true, Ordering::SeqCst);
                let _ = tx.try_send(notice);
            }
        }
    }
}

impl Watchers {
    /// Subscribes a connection to changes in its account's mailboxes.
    fn watch(self: &Arc<Self>, account: &str) -> Watch {
        // Bounded: a connection that falls behind misses notices, not memory; the next one
        // it takes then makes it look ([`Watch::next`]).
        let (tx, rx) = smol::channel::bounded(64);
        let missed = Arc::new(AtomicBool::new(false));
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(account.to_string())
            .or_default()
            .push((id, tx, missed.clone()));
        Watch {
            watchers: self.clone(),
            account: account.to_string(),
            id,
            changes: rx,
            missed,
        }
    }
}

/// The connection a request comes from, for the login defences.
#[derive(Debug)]
pub struct Client {
    pub peer: SocketAddr,
    pub protocol: Protocol,
    /// Its share of the connection limits; a login adds the account to it.
    pub slot: ConnectionSlot,
    /// The login attempt under way, counted by the guard until the session reports how it
    /// ended (or the connection does).
    attempt: Mutex<Option<HeldAttempt>>,
    /// Set once the connection has ended: a SEARCH still running for it stops (the store
    /// asks as it goes), instead of spending CPU and the account's lock on an answer nobody
    /// will read.
    gone: AtomicBool,
}

#[derive(Debug)]
struct HeldAttempt {
    attempt: Attempt,
    /// A password was checked: if the session never reports the outcome (the client hung
    /// up first), it counts as a failure, since the work was done.
    checked: bool,
}

impl Client {
    pub fn new(peer: SocketAddr, protocol: Protocol, slot: ConnectionSlot) -> Client {
        Client {
            peer,
            protocol,
            slot,
            attempt: Mutex::new(None),
            gone: AtomicBool::new(false),
        }
    }

    /// Marks the connection as ended.
    pub fn leave(&self) {
        self.gone.store(true, Ordering::Relaxed);
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<HeldAttempt>> {
        self.attempt.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A storage request under way.
pub enum Running {
    /// On the blocking pool.
    Pool(smol::Task<StorageResult>),
    /// Queued with the store, which answers through the channel.
    Store(smol::channel::Receiver<StorageResult>),
}

impl Running {
    /// Waits for the reply. Cancel-safe: dropped before it resolves, the reply stays to be
    /// waited for again.
    pub async fn wait(&mut self) -> StorageResult {
        match self {
            Running::Pool(task) => task.await,
            Running::Store(rx) => rx.recv().await.unwrap_or_else(|_| {
                Err(StorageError::Internal(
                    "the store dropped a request unanswered".into(),
                ))
            }),
        }
    }
}

/// What storage and directory requests run against. Shared by every connection.
pub struct Backend {
    directory: Arc<Directory>,
    guard: AuthGuard,
    checks: CheckPool,
    cache: AuthCache,
    store: Arc<dyn MailStore>,
    watchers: Arc<Watchers>,
    metrics: Arc<Metrics>,
    /// Store size per account, for the metrics.
    sizes: Arc<AccountSizes>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// A connection's subscription to change notifications; unsubscribes when dropped.
pub struct Watch {
    watchers: Arc<Watchers>,
    account: String,
    id: u64,
    /// Yields changed mailboxes with their MODSEQ once changed.
    changes: smol::channel::Receiver<(MailboxId, ModSeq)>,
    /// A notice was dropped because the channel was full.
    missed: Arc<AtomicBool>,
}

impl Watch {
    /// The next change notice. After a lost one its MODSEQ is unknown, so that the session
    /// looks whatever it has seen.
    pub async fn next(&self) -> Option<(MailboxId, ModSeq)> {
        let notice = self.changes.recv().await.ok()?;
        Some(self.checked(notice))
    }

    /// The notices waiting, the highest MODSEQ per mailbox, without waiting.
    pub fn pending(&self) -> Vec<(MailboxId, ModSeq)> {
        let mut out: Vec<(MailboxId, ModSeq)> = Vec::new();
        while let Ok(notice) = self.changes.try_recv() {
            let (mailbox, modseq) = self.checked(notice);
            match out.iter_mut().find(|(m, _)| *m == mailbox) {
                Some((_, highest)) => *highest = (*highest).max(modseq),
                None => out.push((mailbox, modseq)),
            }
        }
        out
    }

    fn checked(&self, (mailbox, modseq): (MailboxId, ModSeq)) -> (MailboxId, ModSeq) {
        if self.missed.swap(false, Ordering::SeqCst) {
            return (mailbox, UNKNOWN_MODSEQ);
        }
        (mailbox, modseq)
    }

    /// The account watched.
    pub fn account(&self) -> &str {
        &self.account
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = self
            .watchers
            .by_account
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = watchers.get_mut(&self.account) {
            list.retain(|(id, _, _)| *id != self.id);
            if list.is_empty() {
                watchers.remove(&self.account);
            }
        }
    }
}

/// How logins are checked: the failure counters, the check pool and the cache of successes.
#[derive(Debug)]
pub struct LoginChecks {
    pub guard: AuthGuard,
    pub pool: CheckPool,
    pub cache: AuthCache,
}

impl Backend {
    /// The backend over `store`, whichever implementation of the storage contract it is.
    pub fn new(
        directory: Directory,
        logins: LoginChecks,
        store: Arc<dyn MailStore>,
    ) -> Arc<Backend> {
        let watchers = Arc::new(Watchers::default());
        store.subscribe(watchers.clone());
        let sizes = Arc::new(AccountSizes::default());
        store.subscribe(sizes.clone());
        Arc::new(Backend {
            directory: Arc::new(directory),
            guard: logins.guard,
            checks: logins.pool,
            cache: logins.cache,
            store,
            watchers,
            metrics: Arc::new(Metrics::new()),
            sizes,
        })
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The metrics as text for a scrape, the login defences' blocks counted now and the
    /// accounts' sizes brought up to date. Reads the store: call it where blocking is fine.
    pub fn render_metrics(&self) -> String {
        let sizes = self
            .sizes
            .refresh(&*self.store, self.directory.account_names(), unix_now());
        self.metrics
            .render(self.guard.blocked_counts(Instant::now()), &sizes)
    }

    /// Lets the store tidy up (SQLite checkpoints its logs) at shutdown.
    pub fn close(&self) {
        self.store.close();
    }

    /// Subscribes a connection to changes in its account's mailboxes.
    pub fn watch(self: &Arc<Self>, account: &str) -> Watch {
        self.watchers.watch(account)
    }

    /// Runs one storage request on smol's blocking pool, so disk work never holds up the
    /// executor threads that move other connections' bytes.
    ///
    /// The pool's task is returned as is, for the connection to await (or detach): wrapping
    /// it in a task of another executor would add a thread hand-off to every request, which
    /// measurably slowed POP3 RETR (`scripts/bench-vs-dovecot.sh`).
    pub fn execute(self: Arc<Self>, op: StorageOp, client: Arc<Client>) -> Running {
        // A store with threads of its own answers through a channel: no pool thread waits.
        let (tx, rx) = smol::channel::bounded(1);
        let reply: ReplySink = Box::new(move |result| {
            // The connection may have gone meanwhile; nobody is left to tell.
            let _ = tx.try_send(result);
        });
        match self.store.try_submit(op, unix_now(), reply) {
            Ok(()) => Running::Store(rx),
            Err((op, _)) => Running::Pool(smol::unblock(move || {
                self.store.execute(op, unix_now(), &|| client.is_gone())
            })),
        }
    }

    /// Answers one directory request (a login) with the directory, the login defences and
    /// the connection limits; the store never sees it.
    pub fn answer(
        self: Arc<Self>,
        op: DirectoryOp,
        client: Arc<Client>,
    ) -> smol::Task<DirectoryResult> {
        match op {
            // Password checks queue for the check pool, not the blocking pool.
            DirectoryOp::Authenticate { username, password } => smol::spawn(async move {
                self.authenticate(username, password.into_inner(), &client)
                    .await
            }),
            DirectoryOp::ScramLookup { username } => {
                smol::unblock(move || self.scram(&username, &client))
            }
            DirectoryOp::ClaimAccount { account } => {
                smol::unblock(move || self.accept(&account, &client))
            }
            // A table look-up, but the passwd-file may be re-read: off the executor.
            DirectoryOp::FindRecipient { address } => smol::unblock(move || {
                let account = tern_core::directory::resolve_recipient(&address, |name| {
                    self.directory.canonical(name)
                });
                let quota = account
                    .as_deref()
                    .map(|a| self.directory.quota(a))
                    .unwrap_or_default();
                Ok(DirectoryReply::Recipient { account, quota })
            }),
            // A request this runtime does not know yet: a bug to report, not a login.
            op => smol::spawn(async move {
                Err(DirectoryError::Internal(format!(
                    "directory request not supported: {op:?}"
                )))
            }),
        }
    }

    /// Runs a request on the calling (executor) thread when it is a short read and the store
    /// is free at this instant; otherwise hands the request back for [`Backend::execute`].
    ///
    /// A POP3 RETR or an IMAP NOOP is tens of microseconds of work from the page cache; the
    /// two thread hand-offs of the blocking pool cost more than that (they were most of the
    /// CPU time of single-client RETR in `scripts/bench-vs-dovecot.sh`). The store decides
    /// what is quick (nothing that writes or may scan a mailbox); password checks never are;
    /// and the account's lock is only tried, never waited for, so an executor thread never
    /// sits behind another request. Logins are directory requests ([`Backend::answer`]) and
    /// never come here.
    pub fn try_inline(&self, op: StorageOp) -> Result<StorageResult, StorageOp> {
        self.store.try_execute_quick(op, unix_now())
    }

    /// Checks a login: blocks first (not even a right password gets past one), then the
    /// cache of recent successes, then a password check on the check pool, counted by the
    /// guard from the moment it starts; last, the account's connection limit. Refusals are
    /// `Blocked` (the session hangs up), `Unavailable` (IMAP `NO [UNAVAILABLE]`, POP3
    /// `-ERR [SYS/TEMP]`), or `InUse` for a POP3 account already in use; none of them counts
    /// as a failed login.
    async fn authenticate(
        self: Arc<Self>,
        username: String,
        password: Vec<u8>,
        client: &Client,
    ) -> DirectoryResult {
        let now = Instant::now();
        let key = username_key(&username).ok();
        let ip = client.peer.ip();
        let refused = |blocked: Blocked| {
            self.metrics.login(client.protocol, LoginResult::Refused);
            tracing::info!(peer = %client.peer, user = %username, reason = %blocked, "login refused without checking the password");
            refusal(blocked)
        };
        self.guard
            .check(ip, key.as_deref(), now)
            .map_err(&refused)?;
        let account = self.directory.account(&username);
        if let Some(account) = account
            .as_ref()
            .filter(|a| self.cache.hit(a, &password, now))
        {
            return self.accept(&account.name, client);
        }
        let attempt = self
            .guard
            .begin(ip, key.as_deref(), now)
            .map_err(&refused)?;
        self.hold(client, attempt);
        let directory = self.directory.clone();
        let candidate = account.clone();
        let check = self.checks.run(move |scratch| {
            let verified = directory.verify_account(candidate.as_deref(), &password, scratch);
            verified.then_some(password)
        });
        let verified = match check {
            Ok(pending) => pending.await,
            Err(busy) => {
                self.end_attempt(client, None);
                self.metrics.login(client.protocol, LoginResult::Refused);
                tracing::warn!(peer = %client.peer, user = %username, pending = self.checks.pending(), "login refused: {busy}");
                return Err(DirectoryError::Unavailable(busy.to_string()));
            }
        };
        if let Some(held) = client.held().as_mut() {
            held.checked = true;
        }
        match (verified, account) {
            (Some(Some(password)), Some(account)) => {
                self.cache.insert(&account, &password, Instant::now());
                self.accept(&account.name, client)
            }
            (Some(_), _) => Ok(DirectoryReply::Authenticated(AuthOutcome::Rejected)),
            (None, _) => Err(DirectoryError::Internal(
                "the password-check pool has no thread".into(),
            )),
        }
    }

    /// A login whose password is right: claims the account's connection share.
    fn accept(&self, account: &str, client: &Client) -> DirectoryResult {
        let account_key = username_key(account).unwrap_or_else(|_| account.to_lowercase());
        if !client.slot.claim_account(client.protocol, &account_key) {
            self.metrics.login(client.protocol, LoginResult::Refused);
            tracing::info!(peer = %client.peer, user = %account, protocol = ?client.protocol, "login refused: the account has as many connections as allowed");
            return Err(match client.protocol {
                Protocol::Pop3 => DirectoryError::InUse,
                _ => DirectoryError::Unavailable("too many connections for this account".into()),
            });
        }
        Ok(DirectoryReply::Authenticated(AuthOutcome::Accepted {
            account: account.to_string(),
            quota: self.directory.quota(account),
        }))
    }

    /// Keeps `attempt` as the connection's attempt under way; one left from before (a SCRAM
    /// exchange the client gave up) ends first.
    fn hold(&self, client: &Client, attempt: Attempt) {
        let earlier = client.held().replace(HeldAttempt {
            attempt,
            checked: false,
        });
        if let Some(earlier) = earlier {
            self.end_held(earlier, None);
        }
    }

    /// Ends the connection's attempt under way, if any: `outcome` when the session reported
    /// one, otherwise by whether a password was checked.
    fn end_attempt(&self, client: &Client, outcome: Option<AttemptEnd>) -> bool {
        let held = client.held().take();
        match held {
            Some(held) => {
                self.end_held(held, outcome);
                true
            }
            None => false,
        }
    }

    fn end_held(&self, held: HeldAttempt, outcome: Option<AttemptEnd>) {
        let end = outcome.unwrap_or(if held.checked {
            AttemptEnd::Failed
        } else {
            AttemptEnd::Abandoned
        });
        self.guard.end(held.attempt, end, Instant::now());
    }

    /// The connection is over: an attempt it left under way ends with it.
    pub fn connection_ended(&self, client: &Client) {
        self.end_attempt(client, None);
    }

    /// Whether new connections from `ip` are refused at accept (its address is blocked).
    pub fn address_blocked(&self, ip: std::net::IpAddr) -> bool {
        self.guard.address_blocked(ip, Instant::now())
    }

    /// SCRAM keys and a fresh server nonce; blocked clients are refused before any work, as
    /// for a password check.
    fn scram(&self, username: &str, client: &Client) -> DirectoryResult {
        use rand_core::RngCore;
        let key = username_key(username).ok();
        // The proof is checked in the session; the attempt counts from here until the session
        // reports how it ended.
        match self
            .guard
            .begin(client.peer.ip(), key.as_deref(), Instant::now())
        {
            Ok(attempt) => self.hold(client, attempt),
            Err(blocked) => {
                self.metrics.login(client.protocol, LoginResult::Refused);
                tracing::info!(peer = %client.peer, user = %username, reason = %blocked, "SCRAM refused without a lookup");
                return Err(refusal(blocked));
            }
        }
        let lookup = self.directory.scram(username);
        let mut entropy = [0u8; 18];
        rand_core::OsRng.fill_bytes(&mut entropy);
        Ok(DirectoryReply::Scram {
            account: lookup.account,
            credentials: lookup.credentials,
            nonce: tern_core::sasl::ServerNonce::from_entropy(&entropy),
        })
    }

    /// Counts a failed login; the connection calls this on the session's `AuthFailed` event,
    /// so every mechanism (including ones verified inside the core, like SCRAM) is counted.
    pub fn login_failed(&self, client: &Client, username: &str) {
        self.metrics.login(client.protocol, LoginResult::Failed);
        if !self.end_attempt(client, Some(AttemptEnd::Failed)) {
            let key = username_key(username).ok();
            self.guard
                .record_failure(client.peer.ip(), key.as_deref(), Instant::now());
        }
    }

    /// Records a successful login (the session's `LoggedIn` event).
    pub fn logged_in(&self, client: &Client, account: &str) {
        self.metrics.login(client.protocol, LoginResult::Succeeded);
        let key = username_key(account).unwrap_or_else(|_| account.to_lowercase());
        client.slot.logged_in();
        if !self.end_attempt(client, Some(AttemptEnd::Succeeded(key.clone()))) {
            // A login from the cache: nothing was under way, but the address is trusted anew.
            self.guard
                .record_success(client.peer.ip(), &key, Instant::now());
        }
    }
}

/// How a login refused by the guard is answered: a blocked address is hung up on (the session
/// closes), a blocked account is a passing condition.
fn refusal(blocked: Blocked) -> DirectoryError {
    match blocked {
        Blocked::Address => DirectoryError::Blocked,
        Blocked::Account => DirectoryError::Unavailable(blocked.to_string()),
    }
}

/// The store takes wall-clock time from its driver: default internal dates and SEARCH
/// OLDER/YOUNGER.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(modseq: ModSeq) -> Changed {
        Changed {
            account: "alice".into(),
            mailbox: MailboxId(1),
            modseq,
        }
    }

    /// A connection that falls behind loses notices, not memory, and the next notice it takes
    /// makes it look whatever MODSEQ it names (its view may be behind a lost one).
    #[test]
    fn a_lost_notice_makes_the_next_one_count_as_news() {
        let watchers = Arc::new(Watchers::default());
        let watch = watchers.watch("alice");
        let other = watchers.watch("bob");
        for modseq in 1..=100 {
            watchers.changed(&notice(modseq));
        }
        smol::block_on(async {
            assert_eq!(watch.next().await, Some((MailboxId(1), UNKNOWN_MODSEQ)));
            assert_eq!(watch.next().await, Some((MailboxId(1), 2)));
            // The rest, held while the session did not want them, come as one: the highest
            // MODSEQ (the channel holds 64 notices).
            assert_eq!(watch.pending(), [(MailboxId(1), 64)]);
            assert!(watch.pending().is_empty());
            // Once caught up, notices carry their MODSEQ again.
            watchers.changed(&notice(101));
            assert_eq!(watch.next().await, Some((MailboxId(1), 101)));
        });
        assert!(other.changes.is_empty(), "another account hears nothing");
    }
}
