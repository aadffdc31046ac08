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
//! Each waiting request sleeps on a slot of its own: a finished batch wakes exactly its
//! requests, and hands the lead to the first request still queued (waking every queued thread
//! to let them race for it cost a tenth of the server's CPU under the mixed workload).
//!
//! A reply still means durable: nobody is answered before the batch's commit returns, and if
//! it fails, every request of the batch gets the error. The leader's own thread does the work
//! (leader/follower, as LevelDB's writers and sled's batches do), so no thread is added per
//! account and no hand-off is added for a lone request.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};

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
    slot: Arc<Slot>,
}

/// Where a waiting request learns its fate: its reply, or that it leads the next batch. Each
/// request waits on its own slot, so a finished batch wakes exactly its requests and the one
/// that leads next, not every thread in the queue.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Waiting,
    Lead,
    Done(Done),
}

impl Slot {
    fn set(&self, state: SlotState) {
        *lock(&self.state) = state;
        self.changed.notify_one();
    }

    /// Blocks until the request is done (its reply) or leads (`None`).
    fn wait(&self) -> Option<Done> {
        let mut state = lock(&self.state);
        loop {
            match std::mem::take(&mut *state) {
                SlotState::Waiting => {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                SlotState::Lead => return None,
                SlotState::Done(done) => return Some(done),
            }
        }
    }
}

/// Invariant: `waiting` is empty whenever `leading` is false; a leader that finishes with
/// requests left hands leadership to the first of them, which is therefore always in the
/// batch it takes.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    next_ticket: u64,
    /// A leader is running a batch, or has handed leadership on.
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
    stats: Mutex<BatchStats>,
}

impl Handle {
    pub fn new(account: Account, max_batch: usize) -> Handle {
        Handle {
            account: Mutex::new(account),
            max_batch: max_batch.max(1),
            queue: Mutex::new(Queue::default()),
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
        let slot = Arc::new(Slot::default());
        let ticket = {
            let mut queue = lock(&self.queue);
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.waiting.push_back(Job {
                ticket,
                op,
                now,
                slot: slot.clone(),
            });
            if queue.leading {
                drop(queue);
                if let Some(done) = slot.wait() {
                    return done;
                }
            } else {
                queue.leading = true;
            }
            ticket
        };
        // This request leads: it is first in the queue, so in the batch it takes.
        let batch: Vec<Job> = {
            let mut queue = lock(&self.queue);
            let take = queue.waiting.len().min(self.max_batch);
            queue.waiting.drain(..take).collect()
        };
        let slots: Vec<(u64, Arc<Slot>)> =
            batch.iter().map(|j| (j.ticket, j.slot.clone())).collect();
        let results = self.run_batch(batch, run);
        let mut mine = None;
        for (t, done) in results {
            if t == ticket {
                mine = Some(done);
            } else if let Some((_, slot)) = slots.iter().find(|(s, _)| *s == t) {
                slot.set(SlotState::Done(done));
            }
        }
        {
            let mut queue = lock(&self.queue);
            match queue.waiting.front() {
                Some(next) => next.slot.set(SlotState::Lead),
                None => queue.leading = false,
            }
        }
        mine.unwrap_or_else(|| {
            (
                Err(StorageError::Internal("a request lost its reply".into())),
                Vec::new(),
            )
        })
    }

    /// Runs a request that writes nothing under the account's lock, between batches, outside
    /// the queue. A panic in it becomes an error reply, as in a batch.
    pub fn read(&self, run: impl FnOnce(&mut Account) -> Done) -> Done {
        let mut account = lock(&self.account);
        catch_unwind(AssertUnwindSafe(|| run(&mut account))).unwrap_or_else(|_| {
            (
                Err(StorageError::Internal(
                    "a request failed unexpectedly".into(),
                )),
                Vec::new(),
            )
        })
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
