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
//! A driver that can take a reply later (the server: `MailStore::try_submit`) queues its
//! request with a callback instead of a waiting thread. Such a request, finding no batch
//! running, starts a worker thread for the account, which leads batch after batch while
//! requests keep coming and ends after [`LINGER`] without any. The worker first answers the
//! requests of its batch that write nothing (they need no transaction, so they never wait
//! for the batch's fsync), then runs the writes as one batch. A busy account thus costs one
//! thread and one wake-up per reply, instead of a pool thread per request sleeping on the
//! account (hand-offs were a quarter of the server's CPU under the mixed workload).
//!
//! A reply still means durable: nobody is answered before the batch's commit returns, and if
//! it fails, every request of the batch gets the error. The leader's own thread does the work
//! (leader/follower, as LevelDB's writers and sled's batches do), so no thread is added per
//! account and no hand-off is added for a lone request.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tern_core::store::Changed;
use tern_core::{StorageError, StorageOp, StorageResult};

use crate::account::Account;
use crate::lock;

/// Requests one batch takes at most: bounds the time a batch holds the account, and so how
/// long a read that arrives meanwhile waits.
pub const MAX_BATCH: usize = 64;

/// How long a worker waits for more requests before it ends.
pub const LINGER: Duration = Duration::from_millis(200);

/// A request's reply and the mailboxes it changed.
pub type Done = (StorageResult, Vec<Changed>);

/// What runs a request against the account (the store's dispatch), built once per open
/// account and used by every path (waiting callers, readers, the worker).
pub type Runner = Arc<dyn Fn(&mut Account, StorageOp, i64) -> Done + Send + Sync>;

/// One request waiting in the queue.
struct Job {
    ticket: u64,
    op: StorageOp,
    now: i64,
    reply: ReplyTo,
}

/// A request in a running batch: what is left of it once its operation is handed over.
struct Waiting {
    ticket: u64,
    reply: ReplyTo,
}

/// Where a request's reply goes.
enum ReplyTo {
    /// A thread waiting in [`Handle::submit`].
    Slot(Arc<Slot>),
    /// A callback ([`Handle::enqueue`]).
    Callback(Box<dyn FnOnce(Done) + Send>),
}

impl ReplyTo {
    fn deliver(self, done: Done) {
        match self {
            ReplyTo::Slot(slot) => slot.set(SlotState::Done(done)),
            // A callback that panics must not take the batch's leader with it: the queue
            // would stay led by nobody and every later request of the account would wait.
            ReplyTo::Callback(deliver) => {
                let _ = catch_unwind(AssertUnwindSafe(|| deliver(done)));
            }
        }
    }
}

/// Requests that need the account's lock but no transaction of a batch: they write nothing
/// that must be durable before the reply. (`Open` and `Changes` claim `\Recent` without an
/// fsync, see `Account::claim_recent`; a FETCH without PEEK sets `\Seen`, which must be.)
pub fn reads_only(op: &StorageOp) -> bool {
    if let StorageOp::Then { first, then } = op {
        return reads_only(first) && reads_only(then);
    }
    matches!(
        op,
        StorageOp::ListMailboxes { .. }
            | StorageOp::Status { .. }
            | StorageOp::Open { .. }
            | StorageOp::Usage { .. }
            | StorageOp::GetMetadata { .. }
            | StorageOp::Fetch {
                mark_seen: false,
                ..
            }
            | StorageOp::Changes { .. }
    )
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
    /// A leader is running a batch, or has handed leadership on (a worker thread, while it
    /// lives, is the leader).
    leading: bool,
    /// The worker waits for requests (on [`Handle::work`]).
    worker_idle: bool,
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
    /// Wakes an idle worker.
    work: Condvar,
    /// Runs a request against the account.
    runner: Runner,
    stats: Mutex<BatchStats>,
    /// Threads waiting for the account's lock to answer a client: the indexer ends its batch
    /// early when it sees one ([`Handle::wanted`]).
    waiting_for_lock: AtomicUsize,
}

impl Handle {
    pub fn new(account: Account, max_batch: usize, runner: Runner) -> Handle {
        Handle {
            account: Mutex::new(account),
            max_batch: max_batch.max(1),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            runner,
            stats: Mutex::new(BatchStats::default()),
            waiting_for_lock: AtomicUsize::new(0),
        }
    }

    /// The account's lock, for a client's request.
    fn lock_for_request(&self) -> MutexGuard<'_, Account> {
        self.waiting_for_lock.fetch_add(1, Ordering::Relaxed);
        let account = lock(&self.account);
        self.waiting_for_lock.fetch_sub(1, Ordering::Relaxed);
        account
    }

    /// Whether a client's request waits for the account's lock.
    pub fn wanted(&self) -> bool {
        self.waiting_for_lock.load(Ordering::Relaxed) > 0
    }

    /// Batches run so far.
    pub fn stats(&self) -> BatchStats {
        *lock(&self.stats)
    }

    /// Whether a batch is running or a worker lives.
    #[cfg(test)]
    pub fn leading(&self) -> bool {
        lock(&self.queue).leading
    }

    /// Requests queued and not yet taken by a batch.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        lock(&self.queue).waiting.len()
    }

    /// Whether `n` requests have been queued and every one of them taken by a batch: a test
    /// that holds the account then knows the leader is blocked with exactly those, and that
    /// what it submits next stays queued.
    #[cfg(test)]
    pub fn all_taken(&self, n: u64) -> bool {
        let queue = lock(&self.queue);
        queue.next_ticket >= n && queue.waiting.is_empty()
    }

    /// Runs `op` through the queue; returns once it is done (and durable).
    pub fn submit(self: &Arc<Self>, op: StorageOp, now: i64) -> Done {
        let slot = Arc::new(Slot::default());
        let (ticket, leads) = self.push(op, now, ReplyTo::Slot(slot.clone()));
        if !leads {
            if let Some(done) = slot.wait() {
                return done;
            }
        }
        // This request leads: it is first in the queue, so in the batch it takes.
        let mut mine = None;
        let batch = self.take_batch();
        for (waiting, done) in self.run_jobs(batch) {
            if waiting.ticket == ticket {
                mine = Some(done);
            } else {
                waiting.reply.deliver(done);
            }
        }
        let callbacks_next = {
            let mut queue = lock(&self.queue);
            match queue.waiting.front() {
                Some(Job {
                    reply: ReplyTo::Slot(next),
                    ..
                }) => {
                    next.set(SlotState::Lead);
                    false
                }
                Some(Job {
                    reply: ReplyTo::Callback(_),
                    ..
                }) => true,
                None => {
                    queue.leading = false;
                    false
                }
            }
        };
        // Requests with nobody waiting on a thread: a worker leads from here on. If no
        // thread can be had they are refused, as `enqueue` refuses them: leading them here
        // would hold this caller's own reply until the queue goes quiet.
        if callbacks_next && !self.spawn_worker() {
            self.refuse_queued();
        }
        mine.unwrap_or_else(|| {
            (
                Err(StorageError::Internal("a request lost its reply".into())),
                Vec::new(),
            )
        })
    }

    /// Queues `op`; `deliver` gets its reply (and changes), from whichever thread runs its
    /// batch, once it is durable. Starts a worker if no batch is running.
    pub fn enqueue(
        self: &Arc<Self>,
        op: StorageOp,
        now: i64,
        deliver: Box<dyn FnOnce(Done) + Send>,
    ) {
        let (_, start) = self.push(op, now, ReplyTo::Callback(deliver));
        if start && !self.spawn_worker() {
            // No thread to be had: nobody may wait here (the caller's own thread must not
            // block).
            self.refuse_queued();
        }
    }

    /// Gives up the lead and refuses every queued request as a passing condition (no thread
    /// could be started to run them). A waiting caller among them gets the error too.
    fn refuse_queued(&self) {
        let jobs: Vec<Job> = {
            let mut queue = lock(&self.queue);
            queue.leading = false;
            queue.waiting.drain(..).collect()
        };
        for job in jobs {
            job.reply.deliver((
                Err(StorageError::Unavailable(
                    "no thread for the request".into(),
                )),
                Vec::new(),
            ));
        }
    }

    /// Queues a request; returns its ticket and whether its caller must lead (no batch was
    /// running), or else wakes an idle worker to take it.
    fn push(&self, op: StorageOp, now: i64, reply: ReplyTo) -> (u64, bool) {
        let mut queue = lock(&self.queue);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push_back(Job {
            ticket,
            op,
            now,
            reply,
        });
        if queue.leading {
            if queue.worker_idle {
                self.work.notify_one();
            }
            (ticket, false)
        } else {
            queue.leading = true;
            (ticket, true)
        }
    }

    /// Starts a worker thread leading the queue; false if none can be had.
    fn spawn_worker(self: &Arc<Self>) -> bool {
        let handle = self.clone();
        std::thread::Builder::new()
            .name("tern-writer".into())
            .spawn(move || handle.work_until_idle())
            .is_ok()
    }

    /// The worker's loop: batch after batch while requests come, ending (and giving up the
    /// lead) after [`LINGER`] without any.
    fn work_until_idle(&self) {
        loop {
            let batch = {
                let mut queue = lock(&self.queue);
                while queue.waiting.is_empty() {
                    queue.worker_idle = true;
                    let (q, waited) = self
                        .work
                        .wait_timeout(queue, LINGER)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    queue = q;
                    queue.worker_idle = false;
                    if queue.waiting.is_empty() && waited.timed_out() {
                        queue.leading = false;
                        return;
                    }
                }
                let take = queue.waiting.len().min(self.max_batch);
                queue.waiting.drain(..take).collect::<Vec<Job>>()
            };
            // Requests that write nothing are answered first, outside the batch's
            // transaction: they do not wait for its fsync. (They came while the writes of
            // the batch were still unanswered, so either order is one the sessions could
            // have seen.)
            let (reads, writes): (Vec<Job>, Vec<Job>) =
                batch.into_iter().partition(|j| reads_only(&j.op));
            for job in reads {
                let done = self.read(job.op, job.now);
                job.reply.deliver(done);
            }
            for (waiting, done) in self.run_jobs(writes) {
                waiting.reply.deliver(done);
            }
        }
    }

    /// Takes the next batch off the queue (the leader's own request first).
    fn take_batch(&self) -> Vec<Job> {
        let mut queue = lock(&self.queue);
        let take = queue.waiting.len().min(self.max_batch);
        queue.waiting.drain(..take).collect()
    }

    /// Runs jobs as one batch; each comes back with its result, whatever happens.
    fn run_jobs(&self, jobs: Vec<Job>) -> Vec<(Waiting, Done)> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let mut ops = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            ops.push((job.op, job.now));
            replies.push(Waiting {
                ticket: job.ticket,
                reply: job.reply,
            });
        }
        let results = self.run_batch(ops);
        replies.into_iter().zip(results).collect()
    }

    /// Runs a request on the account, locked by the caller (a quick read).
    pub fn run(&self, account: &mut Account, op: StorageOp, now: i64) -> Done {
        (self.runner)(account, op, now)
    }

    /// Runs a request that writes nothing under the account's lock, between batches, outside
    /// the queue. A panic in it becomes an error reply, as in a batch.
    pub fn read(&self, op: StorageOp, now: i64) -> Done {
        let mut account = self.lock_for_request();
        catch_unwind(AssertUnwindSafe(|| (self.runner)(&mut account, op, now))).unwrap_or_else(
            |_| {
                (
                    Err(StorageError::Internal(
                        "a request failed unexpectedly".into(),
                    )),
                    Vec::new(),
                )
            },
        )
    }

    /// Runs a batch; every job gets a result, whatever happens (a follower waits for it).
    fn run_batch(&self, batch: Vec<(StorageOp, i64)>) -> Vec<Done> {
        let run = &*self.runner;
        let count = batch.len();
        let mut account = self.lock_for_request();
        let single = count == 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if single {
                return batch
                    .into_iter()
                    .map(|(op, now)| run(&mut account, op, now))
                    .collect();
            }
            if let Err(e) = account.begin_batch() {
                let e = StorageError::from(e);
                return (0..count).map(|_| (Err(e.clone()), Vec::new())).collect();
            }
            let mut results: Vec<Done> = batch
                .into_iter()
                .map(|(op, now)| run(&mut account, op, now))
                .collect();
            if let Err(e) = account.end_batch() {
                // Nothing of the batch is acknowledged, not even its reads' view of it.
                let e = StorageError::from(e);
                for done in &mut results {
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
                (0..count)
                    .map(|_| {
                        (
                            Err(StorageError::Internal(
                                "a request failed unexpectedly".into(),
                            )),
                            Vec::new(),
                        )
                    })
                    .collect()
            }
        }
    }
}
