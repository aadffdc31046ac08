//! The background indexer: one thread per store that writes queued bodies' FTS rows and
//! reclaims unreferenced bodies, off the write path.
//!
//! A write that queued bodies (`fts_pending`) or left bodies unreferenced hands its account's
//! name to the thread through a channel, as does an account that opens with such work left
//! from before a restart. The thread takes the account's lock for one batch at a time
//! ([`Account::index_batch`](crate::account::Account::index_batch)), so client requests run
//! between batches, and goes round the accounts with work until none is left. It only works
//! on accounts that are open: holding the handle keeps the store from closing the account
//! meanwhile (and so from opening a second connection to it), and an account closed with work
//! left gets it back when it next opens. The thread ends when the store is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{lock, OpenAccounts};

/// How long an account's new work waits before the thread takes it up. Most messages that
/// die young (a draft replaced, a message moved to Trash and expunged, the churn of a busy
/// shared mailbox) are gone by then and cost the index nothing; a burst of writes is indexed
/// in a few large batches rather than one small transaction per write, each taking the
/// account's lock. SEARCH loses nothing in exactness meanwhile: queued bodies are candidates
/// whose text is checked directly.
pub const SETTLE: Duration = Duration::from_secs(2);

/// How long the thread leaves an account alone after a batch that gave way to a client.
const GIVE_WAY: Duration = Duration::from_millis(5);

/// Wake-ups taken from the channel at once (each names an account; most repeat one).
const MAX_WAKES: usize = 4096;

/// What the store and the thread share.
#[derive(Default)]
struct Flags {
    /// The store is going: stop after the current batch.
    stop: AtomicBool,
    /// Tests hold the indexer back (`SqliteStore::set_background_indexing`).
    paused: AtomicBool,
}

/// Wakes the indexer for an account, from any thread.
#[derive(Clone)]
pub struct Waker {
    tx: Option<Sender<String>>,
    /// Accounts the thread has been told of and not yet taken up: telling it again would only
    /// wake it for nothing (it did, at every write: most of its CPU under load).
    told: Arc<Mutex<HashSet<String>>>,
}

impl Waker {
    /// Tells the thread that `account` has work, unless it already knows.
    pub fn wake(&self, account: &str) {
        let Some(tx) = &self.tx else {
            return;
        };
        if lock(&self.told).insert(account.to_string()) {
            // Fails only once the thread is gone (store dropping): the work stays queued on
            // disk and is resumed when the account next opens.
            let _ = tx.send(account.to_string());
        }
    }
}

/// The store's end of the indexer.
pub struct Indexer {
    waker: Waker,
    flags: Arc<Flags>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Starts the thread; it finds accounts' handles in `open`.
    pub fn start(open: Arc<Mutex<OpenAccounts>>) -> Indexer {
        let (tx, rx) = channel();
        let flags = Arc::new(Flags::default());
        let told = Arc::new(Mutex::new(HashSet::new()));
        let thread = {
            let (flags, told) = (flags.clone(), told.clone());
            std::thread::Builder::new()
                .name("tern-indexer".into())
                .spawn(move || work(&rx, &open, &flags, &told))
                .ok()
        };
        Indexer {
            waker: Waker { tx: Some(tx), told },
            flags,
            thread,
        }
    }

    /// Tells the thread that `account` has work.
    pub fn wake(&self, account: &str) {
        self.waker.wake(account);
    }

    /// A handle that wakes the thread from elsewhere (a worker thread).
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Holds the thread back (`false`) or lets it go on.
    pub fn set_running(&self, running: bool) {
        if running {
            // The paused thread may not have forgotten yet what it was told: without this, the
            // wake-ups that follow a resume could be taken for repeats and dropped.
            lock(&self.waker.told).clear();
        }
        self.flags.paused.store(!running, Ordering::SeqCst);
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
        // Wakes the thread to see `stop` (workers may still hold senders, so the channel
        // need not close now).
        if let Some(tx) = self.waker.tx.take() {
            let _ = tx.send(String::new());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: accounts with work, each taken up [`SETTLE`] after its first wake-up, then
/// one batch per turn, the longest-waiting account first.
fn work(
    rx: &Receiver<String>,
    open: &Mutex<OpenAccounts>,
    flags: &Flags,
    told: &Mutex<HashSet<String>>,
) {
    // Accounts with work, and when each may have its next batch.
    let mut due: HashMap<String, Instant> = HashMap::new();
    loop {
        if flags.stop.load(Ordering::SeqCst) {
            return;
        }
        let woken = match due.values().min() {
            None => match rx.recv() {
                Ok(name) => Some(name),
                Err(_) => return,
            },
            Some(&at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(name) => Some(name),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        // Bounded: writers may wake it faster than it drains. A wake-up for an account
        // already waiting leaves its time as it is, so no account waits longer than SETTLE.
        for name in woken.into_iter().chain(rx.try_iter().take(MAX_WAKES)) {
            due.entry(name).or_insert_with(|| Instant::now() + SETTLE);
        }
        if flags.paused.load(Ordering::SeqCst) {
            // Forgotten: resuming wakes every open account again.
            due.clear();
            lock(told).clear();
            continue;
        }
        let now = Instant::now();
        let Some(name) = due
            .iter()
            .filter(|(_, at)| **at <= now)
            .min_by_key(|(_, at)| **at)
            .map(|(name, _)| name.clone())
        else {
            continue;
        };
        // Taken up: a write from now on tells the thread again (this batch may miss it).
        lock(told).remove(&name);
        let handle = lock(open).map.get(&name).map(|(h, _)| h.clone());
        let (more, wanted) = match handle {
            // An error (a full disk, say) leaves the work queued on disk; the next write
            // or open of the account tries again.
            Some(handle) => (
                lock(&handle.account)
                    .index_batch(&|| handle.wanted())
                    .unwrap_or(false),
                handle.wanted(),
            ),
            None => (false, false),
        };
        if more {
            // Behind the accounts already due, in turn; a little later if a client's request
            // waits for the account (the lock is not fair: taken again at once, it would
            // make the request wait for another batch).
            let pause = if wanted { GIVE_WAY } else { Duration::ZERO };
            due.insert(name, Instant::now() + pause);
        } else {
            due.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A write tells the thread of its account once until the thread takes the account up,
    /// instead of waking it at every write.
    #[test]
    fn an_account_is_told_once_until_taken_up() {
        let (tx, rx) = channel();
        let told = Arc::new(Mutex::new(HashSet::new()));
        let waker = Waker {
            tx: Some(tx),
            told: told.clone(),
        };
        for _ in 0..5 {
            waker.wake("alice");
            waker.clone().wake("bob");
        }
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["alice", "bob"]);
        lock(&told).remove("alice");
        waker.wake("alice");
        waker.wake("bob");
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["alice"]);
    }

    /// Resuming forgets what the thread was told: the wake-ups that follow a resume reach it
    /// even if the paused thread had not yet cleared them.
    #[test]
    fn a_resume_lets_every_account_be_told_again() {
        let indexer = Indexer::start(Arc::new(Mutex::new(OpenAccounts::default())));
        indexer.set_running(false);
        lock(&indexer.waker.told).insert("alice".to_string());
        indexer.set_running(true);
        assert!(lock(&indexer.waker.told).is_empty());
    }
}
