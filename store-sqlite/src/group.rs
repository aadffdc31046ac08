//! Group commit: the requests that queue for an account while it is busy run together, in one
//! transaction with one fsync, instead of one fsync each.
//!
//! Every write must be durable before it is answered, and with `synchronous=FULL` a commit
//! costs an fsync of the log: with many sessions writing one account (flags set by one client,
//! an expunge by another, new mail arriving) the disk, not the work, set the pace. Here a
//! request joins the account's queue; whoever finds no batch running becomes the leader, takes
//! everything queued (at most [`MAX_BATCH`]), runs it in order inside one transaction (each
//! write in a savepoint, so one that fails is rolled back alone), commits once, and hands each
//! request its reply. Requests that arrive meanwhile queue for the next batch. A lone request
//! runs exactly as before, in its own transaction.
//!
//! A reply still means durable: nobody is answered before the batch's commit returns, and if
//! it fails, every request of the batch gets the error. The leader's own thread does the work
//! (leader/follower, as LevelDB's writers and sled's batches do), so no thread is added per
//! account and no hand-off is added for a lone request.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex};

use tern_core::store::Changed;
use tern_core::{StorageError, StorageOp, StorageResult};

use crate::account::Account;
use crate::lock;

/// Requests one batch takes at most: bounds the time a batch holds the account, and so how
/// long a read that arrives meanwhile waits.
pub const MAX_BATCH: usize = 64;

/// A request's reply and the mailboxes it changed.
pub type Done = (StorageResult, Vec<Changed>);

/// One request waiting in the queue.
struct Job {
    ticket: u64,
    op: StorageOp,
    now: i64,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    finished: HashMap<u64, Done>,
    next_ticket: u64,
    /// A leader is running a batch.
    leading: bool,
}

/// Figures for tests and benchmarks: batches run and requests in them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Batches of more than one request.
    pub batches: u64,
    /// Requests that ran in those batches.
    pub batched: u64,
}

/// An open account: its database behind a lock, and the queue in front of it.
pub struct Handle {
    pub(crate) account: Mutex<Account>,
    /// Requests one batch may take (1: every request commits alone).
    max_batch: usize,
    queue: Mutex<Queue>,
    done: Condvar,
    stats: Mutex<BatchStats>,
}

impl Handle {
    pub fn new(account: Account, max_batch: usize) -> Handle {
        Handle {
            account: Mutex::new(account),
            max_batch: max_batch.max(1),
            queue: Mutex::new(Queue::default()),
            done: Condvar::new(),
            stats: Mutex::new(BatchStats::default()),
        }
    }

    /// Batches run so far.
    pub fn stats(&self) -> BatchStats {
        *lock(&self.stats)
    }

    /// Requests queued and not yet taken by a batch.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        lock(&self.queue).waiting.len()
    }

    /// Runs `op` through the queue; returns once it is done (and durable).
    pub fn submit(
        &self,
        op: StorageOp,
        now: i64,
        run: &dyn Fn(&mut Account, StorageOp, i64) -> Done,
    ) -> Done {
        let mut queue = lock(&self.queue);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push_back(Job { ticket, op, now });
        loop {
            if let Some(done) = queue.finished.remove(&ticket) {
                return done;
            }
            if queue.leading {
                queue = self
                    .done
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            queue.leading = true;
            let take = queue.waiting.len().min(self.max_batch);
            let batch: Vec<Job> = queue.waiting.drain(..take).collect();
            drop(queue);
            let results = self.run_batch(batch, run);
            queue = lock(&self.queue);
            queue.finished.extend(results);
            queue.leading = false;
            self.done.notify_all();
        }
    }

    /// Runs a batch; every job gets a result, whatever happens (a follower waits for it).
    fn run_batch(
        &self,
        batch: Vec<Job>,
        run: &dyn Fn(&mut Account, StorageOp, i64) -> Done,
    ) -> Vec<(u64, Done)> {
        let tickets: Vec<u64> = batch.iter().map(|j| j.ticket).collect();
        let mut account = lock(&self.account);
        let single = batch.len() == 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if single {
                return batch
                    .into_iter()
                    .map(|j| (j.ticket, run(&mut account, j.op, j.now)))
                    .collect();
            }
            if let Err(e) = account.begin_batch() {
                let e = StorageError::from(e);
                return batch
                    .into_iter()
                    .map(|j| (j.ticket, (Err(e.clone()), Vec::new())))
                    .collect();
            }
            let mut results: Vec<(u64, Done)> = batch
                .into_iter()
                .map(|j| (j.ticket, run(&mut account, j.op, j.now)))
                .collect();
            if let Err(e) = account.end_batch() {
                // Nothing of the batch is acknowledged, not even its reads' view of it.
                let e = StorageError::from(e);
                for (_, done) in &mut results {
                    *done = (Err(e.clone()), Vec::new());
                }
            }
            results
        }));
        match outcome {
            Ok(results) => {
                if !single {
                    let mut stats = lock(&self.stats);
                    stats.batches += 1;
                    stats.batched += results.len() as u64;
                }
                results
            }
            Err(_) => {
                if account.in_batch() {
                    account.abort_batch();
                }
                tickets
                    .into_iter()
                    .map(|t| {
                        (
                            t,
                            (
                                Err(StorageError::Internal(
                                    "a request failed unexpectedly".into(),
                                )),
                                Vec::new(),
                            ),
                        )
                    })
                    .collect()
            }
        }
    }
}
